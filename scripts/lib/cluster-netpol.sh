# shellcheck shell=bash
# Sourced by scripts/cluster: the private cluster's NetworkPolicy agent and the host snapshot.
#
# The agent is kube-router's firewall alone (no routing, no service proxy), built once by
# scripts/build-netpol. `up` starts it once the node is Ready (and on a cluster already
# running); `down` stops it before anything else and removes its iptables chains and ipsets.
# It keeps a snapshot of the host taken just before it started, and says after it stopped
# whether the host is back to that snapshot.
#
# Uses from scripts/cluster: ROOT DIR RUN LOGS BASELINE NODE MODE ADMIN_KUBECONFIG SYSCTLS
# HOST_PATHS, and log die start stop_pid wait_for component_pid.

NETPOL_VERSION=2.1.0
NETPOL_BIN=$("$ROOT/scripts/build-netpol" --print-path)/kube-router
NETPOL_DIR=$DIR/netpol
# What the agent names: chains and ipsets outside these never belong to it.
NETPOL_CHAINS='^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)'
NETPOL_SETS='^(KUBE-SRC-|KUBE-DST-|kube-router-)'
# Sysctls the agent may set besides the kubelet's: recorded by `up`, put back by `down`.
NETPOL_SYSCTLS=(net.bridge.bridge-nf-call-ip6tables net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter
  net.ipv4.conf.all.forwarding)
SYSCTLS+=("${NETPOL_SYSCTLS[@]}")

netpol_enabled() { [[ $MODE == private && ${DOCKYARD_CLUSTER_NETWORK_POLICY:-1} != 0 ]]; }

# --- host snapshot ------------------------------------------------------------------------

# What a cluster and its agent may leave on the host, one sorted line each: sysctls; iptables and
# ip6tables chains per table (kube-proxy's per-Service chains counted as one name per kind, since
# Services come and go) and the rules of the built-in chains; nftables tables; ipsets; bridges;
# mounts under the cluster's and the kubelet's directories; the kubelet's fixed paths; kubepods
# cgroups; loaded kernel modules (none here when the kernel has no module support).
host_snapshot() {
  {
    local s p family c
    for s in "${SYSCTLS[@]}"; do
      p=/proc/sys/${s//.//}
      [[ -r $p ]] && echo "sysctl $s=$(tr -s '\t ' ' ' <"$p")"
    done
    for family in iptables ip6tables; do
      command -v "$family-save" >/dev/null || continue
      "$family-save" 2>/dev/null | awk -v f="$family" '
        /^\*/ {t = substr($1, 2); next}
        /^:/ {c = substr($1, 2)
              if (c ~ /^KUBE-(SVC|SEP|EXT|FW|SVL|XLB)-/) {split(c, a, "-"); c = a[1] "-" a[2] "-*"}
              print "chain", f, t, c; next}
        /^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) / {print "rule", f, t, $0}'
    done
    if command -v nft >/dev/null; then nft list tables 2>/dev/null | sed 's/^/nft /'; fi
    if command -v ipset >/dev/null; then ipset list -n 2>/dev/null | sed 's/^/ipset /'; fi
    ip -o link show type bridge 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "bridge", $2}'
    awk -v d="$DIR/" 'index($2, d) == 1 || $2 ~ "^(/var/lib/kubelet|/run/netns|/run/containerd)(/|$)" {print "mount", $2}' \
      /proc/mounts
    for p in "${HOST_PATHS[@]}" /var/lib/kube-router; do [[ -e $p ]] && echo "path $p"; done
    for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do [[ -d $c ]] && echo "cgroup $c"; done
    [[ -r /proc/modules ]] && awk '{print "module", $1}' /proc/modules
    true
  } | sort -u
}

# Lines that differ between a snapshot file and now ("- " gone since, "+ " new since), both read
# through FILTER when one is given (a command reading a snapshot on stdin, e.g. netpol_view).
# Status 0 whether or not they differ: the caller says what the difference means.
host_diff() { # SNAPSHOT_FILE [FILTER...]
  local file=$1
  shift
  (($#)) || set -- cat
  { diff <("$@" <"$file") <(host_snapshot | "$@") || true; } | sed -n 's/^< /- /p; s/^> /+ /p'
}

# A snapshot's lines that the NetworkPolicy agent could have left: what the rest of the running
# cluster changes meanwhile is dropped (kube-proxy's and the kubelet's KUBE- chains and the rules
# that jump to them, the CNI's bridges and chains, pods' mounts, the kubelet's paths and cgroups,
# the sysctls the CNI sets for its first pod, which the cluster's `down` puts back), and so are
# tables as such (built-in chains, nftables tables): a table the agent made and left empty is
# deleted by netpol_clean, and what it left in one is still compared, chain by chain.
netpol_view() {
  awk -v own="${NETPOL_CHAINS#^}" '
    $1 == "mount" || $1 == "bridge" || $1 == "cgroup" || $1 == "nft" || $1 == "sysctl" { next }
    $1 == "chain" && $4 ~ /^(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING)$/ { next }
    $1 == "path" && $2 != "/var/lib/kube-router" { next }
    ($1 == "chain" || $1 == "rule") && /(KUBE-|CNI-)/ && $0 !~ own { next }
    { print }'
}

# After `down`: one line saying whether the host is as `up` found it (informational: parts other
# than the cluster, such as the engine, may have changed it meanwhile).
host_compare_after_down() { # SNAPSHOT_FILE
  [[ -r $1 ]] || return 0
  local changes
  changes=$(host_diff "$1")
  if [[ -z $changes ]]; then log "host snapshot: as before up"
  else log "host snapshot differs from before up: $(tr '\n' ';' <<<"$changes")"; fi
  rm -f "$1"
}

# --- the agent ----------------------------------------------------------------------------

# Chains of the agent in a table, and every rule that jumps to them, removed in one restore.
netpol_remove_chains() { # FAMILY TABLE "CHAIN..."
  "$1-save" -t "$2" | python3 -c '
import sys
drop = set(sys.argv[1].split())
for line in sys.stdin:
    words = line.split()
    if line.startswith(":") and words[0][1:] in drop:
        continue
    if line.startswith("-A") and (words[1] in drop or any(w in drop for w in words[2:])):
        continue
    sys.stdout.write(line)' "$3" | "$1-restore" -T "$2"
}

# The agent's chains and ipsets that its baseline (the host before it started) does not list.
netpol_clean() {
  local base=$NETPOL_DIR/baseline family table chains removed=()
  [[ -r $base ]] || base=/dev/null
  for family in iptables ip6tables; do
    command -v "$family-save" >/dev/null || continue
    local found
    found=$(comm -13 <(awk -v f="$family" '$1 == "chain" && $2 == f {print $3, $4}' "$base" | sort) \
      <("$family-save" 2>/dev/null | awk '/^\*/ {t = substr($1, 2)} /^:/ {print t, substr($1, 2)}' | sort) |
      awk -v re="$NETPOL_CHAINS" '$2 ~ re')
    [[ -n $found ]] || continue
    for table in $(awk '{print $1}' <<<"$found" | sort -u); do
      chains=$(awk -v t="$table" '$1 == t {print $2}' <<<"$found")
      if netpol_remove_chains "$family" "$table" "$chains"; then removed+=("$family/$table: $(wc -w <<<"$chains") chains")
      else log "could not remove the NetworkPolicy agent's chains from $family table $table"; fi
    done
  done
  if command -v ipset >/dev/null; then
    local set n=0
    for set in $(comm -13 <(awk '$1 == "ipset" {print $2}' "$base" | sort) <(ipset list -n 2>/dev/null | sort) |
      grep -E "$NETPOL_SETS"); do
      if ipset destroy "$set" 2>/dev/null; then n=$((n + 1)); else log "could not destroy ipset $set (still in use?)"; fi
    done
    ((n == 0)) || removed+=("$n ipsets")
  fi
  # The tables iptables-nft created for them, when nothing else uses them (no rule left).
  if command -v nft >/dev/null; then
    local table_line
    while read -r table_line; do
      [[ -n $table_line ]] || continue
      local listing
      # shellcheck disable=SC2086
      listing=$(nft list $table_line 2>/dev/null) || continue # unreadable is not empty
      # Empty: no rule, and no chain but the built-in ones (those hooked in with a `type` line).
      if ! grep -qvE '^\s*(table|chain|type|}|$)' <<<"$listing" &&
        (($(grep -cE '^\s*chain ' <<<"$listing") == $(grep -cE '^\s*type ' <<<"$listing"))) &&
        nft delete $table_line 2>/dev/null; then removed+=("empty nftables $table_line"); fi
    done < <(comm -13 <(awk '$1 == "nft" {$1 = ""; sub(/^ /, ""); print}' "$base" | sort) \
      <(nft list tables 2>/dev/null | sort))
  fi
  ((${#removed[@]} == 0)) || log "removed the NetworkPolicy agent's $(IFS=','; sed 's/,/, /g' <<<"${removed[*]}")"
  return 0
}

# The agent is ready once it has hooked its chains into the filter table.
netpol_ready() { iptables -S KUBE-ROUTER-FORWARD >/dev/null 2>&1; }

# Returns 1 (after one line saying why) when the agent cannot run: the cluster works without it.
netpol_up() {
  netpol_enabled || return 0
  [[ -n $(component_pid kube-router || true) ]] && return 0
  if [[ ! -x $NETPOL_BIN ]]; then
    "$ROOT/scripts/build-netpol" >/dev/null || return 1
  fi
  command -v ipset >/dev/null || { log "the NetworkPolicy agent needs ipset: apt-get install ipset"; return 1; }
  mkdir -p "$NETPOL_DIR" "$RUN" "$LOGS"
  # It gives up when its caches do not fill within a minute: only start it against an API server that answers.
  local deadline=$((SECONDS + 60))
  until apiserver_ready >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "the API server does not answer; the NetworkPolicy agent was not started"; return 1; }
    sleep 0.2
  done
  # Left by an agent that was never stopped: cleaned against the snapshot taken before it started.
  [[ -r $NETPOL_DIR/baseline ]] && netpol_clean
  host_snapshot >"$NETPOL_DIR/baseline"
  # Firewall only: the bridge CNI routes and kube-proxy serves Services. No metrics or health
  # listener. The admin kubeconfig: the cluster listens on this machine only.
  start kube-router "$NETPOL_BIN" --kubeconfig "$ADMIN_KUBECONFIG" --run-firewall=true --run-router=false \
    --run-service-proxy=false --hostname-override "$NODE" --metrics-port=0 --health-port=0
  deadline=$((SECONDS + 90))
  local agent
  agent=$(cat "$RUN/kube-router.pid")
  until netpol_ready; do
    # Its pid, not component_pid: until the forked shell has exec'd, its command line is still ours.
    if ! kill -0 "$agent" 2>/dev/null; then
      log "the NetworkPolicy agent (kube-router) exited: $(grep -v '^---' "$LOGS/kube-router.log" | tail -1 | cut -c1-300)"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "the NetworkPolicy agent (kube-router) set up no rules within 90s; see $LOGS/kube-router.log"
      return 1
    fi
    sleep 0.2
  done
  log "NetworkPolicy enforced by kube-router v$NETPOL_VERSION (firewall only), pid $(component_pid kube-router)"
}

# Stop the agent, remove its chains and ipsets, and say whether the host is back to its baseline
# (pods' mounts aside: they come and go while the cluster runs). Status 1 when it is not.
netpol_stop() {
  local p
  if p=$(component_pid kube-router); then stop_pid "$p" kube-router; fi
  rm -f "$RUN/kube-router.pid"
  [[ -r $NETPOL_DIR/baseline ]] || return 0
  netpol_clean
  local changes
  changes=$(host_diff "$NETPOL_DIR/baseline" netpol_view)
  if [[ -z $changes ]]; then log "NetworkPolicy agent stopped; the host is as before it started"; return 0; fi
  log "NetworkPolicy agent stopped; the host differs from before it started: $(tr '\n' ';' <<<"$changes")"
  return 1
}

netpol_down() {
  netpol_stop || true
  rm -rf "$NETPOL_DIR"
}

netpol_status() {
  local p
  if [[ $MODE != private ]]; then echo "kube-router: not started (it runs beside the private cluster only)"
  elif ! netpol_enabled; then echo "kube-router: off (DOCKYARD_CLUSTER_NETWORK_POLICY=0): NetworkPolicy not enforced"
  elif p=$(component_pid kube-router); then
    echo "kube-router: running, pid $p (NetworkPolicy enforced, v$NETPOL_VERSION); log $LOGS/kube-router.log"
  else echo "kube-router: stopped (NetworkPolicy not enforced)"; fi
}

# scripts/cluster netpol start|stop|status: the agent alone, on a running private cluster.
cmd_netpol() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock 9
  load_state
  [[ $MODE == private ]] || die "no private cluster here; the NetworkPolicy agent runs only beside one"
  case "${1:-}" in
    start) [[ -n $(component_pid kube-apiserver || true) ]] || die "the cluster is not running; run scripts/cluster up"
           netpol_up || exit 1 ;;
    stop) netpol_stop ;;
    status) netpol_status ;;
    *) die "usage: scripts/cluster netpol start|stop|status" ;;
  esac
}
