# The set-up's parts, run quietly: one line each on the terminal, everything they print in a log.
# Sourced by scripts/setup (bash); needs PART_LOGS and PART_STATUS set.
#
#   part [--needs OTHER] NAME LABEL COMMAND [ARG...]
#       Runs COMMAND (a command or a function) with stdout and stderr in $PART_LOGS/NAME.log and
#       prints one line: "setup: LABEL: <the last line COMMAND printed on stdout> (time)". While it
#       runs: the elapsed seconds and its latest step, updated in place on a terminal; a dot every
#       30 s otherwise. On failure: the log's last lines and the log's path.
#       Its outcome goes to $PART_STATUS/NAME, one line:
#         ok: <that last line>
#         unavailable: <why>        COMMAND exited 69: this machine cannot run it
#         failed: <why>; log <file> any other non-zero exit
#       --needs OTHER: when COMMAND fails while part OTHER is unavailable, this part is unavailable too.
#       Returns COMMAND's exit status.
#   part_skip NAME LABEL REASON   records NAME as unavailable without running anything; one line.
#   part_state NAME               ok | unavailable | failed (empty when not recorded)
#   parts_failed                  the names of the failed parts, space-separated
#   parts_verdict                 one line when parts failed; returns 1 then under CI=true (else 0)
#
# A function run as COMMAND runs where `set -e` does not apply: it must check its own steps.

PART_EX_UNAVAILABLE=69
PART_TAIL_LINES=${PART_TAIL_LINES:-25}
PART_DOT_SECONDS=${PART_DOT_SECONDS:-30}

_part_elapsed() { # SECONDS -> "42s" / "8m03s"
  if (($1 < 60)); then echo "$1s"; else printf '%dm%02ds\n' $(($1 / 60)) $(($1 % 60)); fi
}

_part_write() { # NAME LINE
  mkdir -p "$PART_STATUS"
  printf '%s\n' "$2" >"$PART_STATUS/$1.tmp" && mv "$PART_STATUS/$1.tmp" "$PART_STATUS/$1"
}

part_state() { local line; line=$(head -n1 "$PART_STATUS/$1" 2>/dev/null) || return 0; echo "${line%%:*}"; }
part_reason() { local line; line=$(head -n1 "$PART_STATUS/$1" 2>/dev/null) || return 0; echo "${line#*: }"; }

parts_failed() {
  local f names=()
  for f in "$PART_STATUS"/*; do
    [[ -f $f && $(part_state "${f##*/}") == failed ]] && names+=("${f##*/}")
  done
  echo "${names[*]}"
}

# The latest line a script of this project wrote about what it is doing ("build-cluster: building …").
_part_phase() { # LOG
  tail -n 200 "$1" 2>/dev/null | grep -E '^[a-z][a-z-]*: ' | grep -vE '^(go|npm|pip|WARNING|warning|note): ' | tail -n1
}

# Runs in the background while a part runs; stops by itself once the set-up (PARENT) is gone.
_part_ticker() { # PARENT LABEL LOG START
  local parent=$1 label=$2 log=$3 start=$4 ticks=0 now line cols
  if [[ -t 2 ]]; then
    cols=$(tput cols 2>/dev/null || echo 100)
    while kill -0 "$parent" 2>/dev/null; do
      now=$(date +%s)
      line="setup: $label … $(_part_elapsed $((now - start)))"
      local phase
      phase=$(_part_phase "$log")
      [[ -z $phase ]] || line+="  ${phase}"
      printf '\r\033[K%s' "${line:0:$((cols - 1))}" >&2
      sleep 1
    done
  else
    while kill -0 "$parent" 2>/dev/null; do
      sleep 1
      ((++ticks % PART_DOT_SECONDS == 0)) && printf . >&2
    done
  fi
}

part_skip() { # NAME LABEL REASON
  _part_write "$1" "unavailable: $3"
  echo "setup: $2: not here: $3" >&2
}

part() {
  local needs=''
  if [[ $1 == --needs ]]; then needs=$2; shift 2; fi
  local name=$1 label=$2
  shift 2
  mkdir -p "$PART_LOGS" "$PART_STATUS"
  local log=$PART_LOGS/$name.log out=$PART_LOGS/.$name.stdout start rc=0 ticker
  echo "--- $(date -u +%FT%TZ) $label: $*" >"$log"
  start=$(date +%s)
  [[ -t 2 ]] || printf 'setup: %s' "$label" >&2
  _part_ticker $$ "$label" "$log" "$start" &
  ticker=$!
  "$@" >"$out" 2>>"$log" </dev/null || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  local took=$(($(date +%s) - start)) reason summary time=''
  reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n1)
  summary=$(grep -v '^[[:space:]]*$' "$out" | tail -n1)
  cat "$out" >>"$log"
  rm -f "$out"
  ((took < 1)) || time=" ($(_part_elapsed "$took"))"
  if [[ -t 2 ]]; then printf '\r\033[Ksetup: %s' "$label" >&2; fi
  # The script's own name in front of its line ("cluster: …") repeats the label.
  summary=$(sed -E 's/^[a-z][a-z-]*: //' <<<"$summary")
  reason=$(sed -E 's/^[a-z][a-z-]*: //' <<<"$reason")
  if ((rc == 0)); then
    _part_write "$name" "ok: ${summary:-done}"
    echo ": ${summary:-done}$time" >&2
    return 0
  fi
  if ((rc != PART_EX_UNAVAILABLE)) && [[ -n $needs && $(part_state "$needs") == unavailable ]]; then
    rc=$PART_EX_UNAVAILABLE reason="needs the $needs part, which this machine cannot run: $(part_reason "$needs")"
  fi
  if ((rc == PART_EX_UNAVAILABLE)); then
    _part_write "$name" "unavailable: $reason"
    echo ": not here: $reason" >&2
    return "$rc"
  fi
  [[ -n $reason && $reason != "--- "* ]] || reason="exit status $rc"
  _part_write "$name" "failed: $reason; log $log"
  echo ": FAILED$time: $reason" >&2
  grep -v '^[[:space:]]*$' "$log" | tail -n "$PART_TAIL_LINES" | sed 's/^/    /' >&2
  echo "setup: $label: the whole log is $log" >&2
  return "$rc"
}

# A part this machine can run but that did not start fails a CI run; elsewhere its tests skip and say so.
parts_verdict() {
  local failed ci=${CI:-}
  failed=$(parts_failed)
  [[ -n $failed ]] || return 0
  case ${ci,,} in
    true | 1 | yes)
      echo "setup: failed to start: $failed (this machine can run them; under CI=true that fails the run)" >&2
      return 1 ;;
  esac
  echo "setup: failed to start: $failed; their tests skip (under CI=true they fail)" >&2
}
