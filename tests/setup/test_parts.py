"""The set-up's parts: scripts/lib/parts.sh run for real by bash (one line per part, output in a log, each
outcome recorded), and the decision a test makes from those records when its part is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import parts

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "scripts" / "lib" / "parts.sh"


def run_parts(tmp_path: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    """`script` in bash with parts.sh sourced, logs and statuses under tmp_path; stderr is not a terminal."""
    prelude = (f"set -euo pipefail\nPART_LOGS={tmp_path}/logs\nPART_STATUS={tmp_path}/status\n"
               f"source {LIB}\n")
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **env})


def status(tmp_path: Path, name: str) -> str:
    return (tmp_path / "status" / name).read_text().strip()


# --- the shell side: scripts/lib/parts.sh -------------------------------------------------------------------------

NOISY = """noisy() {
  for i in $(seq 1 300); do echo "go: downloading example.com/m$i v1.0.$i" >&2; done
  echo "build-thing: building thing v1" >&2
  echo "intermediate line on stdout"
  echo "thing: thing v1 at /opt/thing"
}
"""


def test_a_part_prints_one_line_and_its_output_goes_to_the_log(tmp_path):
    proc = run_parts(tmp_path, NOISY + 'part thing "the thing" noisy\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == "setup: the thing: thing v1 at /opt/thing\n"
    log = (tmp_path / "logs" / "thing.log").read_text()
    assert log.count("go: downloading") == 300
    assert "build-thing: building thing v1" in log and "intermediate line on stdout" in log
    assert status(tmp_path, "thing") == "ok: thing v1 at /opt/thing"


def test_a_long_part_shows_progress_on_its_own_line_only(tmp_path):
    proc = run_parts(tmp_path, 'slow() { sleep 3.5; echo "slow: done"; }\npart slow "slow part" slow\n',
                     PART_DOT_SECONDS="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    line = proc.stderr.rstrip("\n")
    assert line.startswith("setup: slow part.."), line  # a dot a second here (every 30 s by default)
    assert line.endswith(": done (3s)") or line.endswith(": done (4s)"), line


def test_a_failing_part_shows_the_tail_of_its_log_and_names_the_log(tmp_path):
    script = NOISY + 'broken() { noisy; echo "thing: compiler said no" >&2; return 1; }\n' \
                     'part thing "the thing" broken || echo "rc=$?"\n'
    proc = run_parts(tmp_path, script, PART_TAIL_LINES="5")
    log = tmp_path / "logs" / "thing.log"
    lines = proc.stderr.splitlines()
    assert lines[0] == "setup: the thing: FAILED: compiler said no"
    assert "    thing: compiler said no" in lines[1:6]
    assert lines[-1] == f"setup: the thing: the whole log is {log}"
    assert len(lines) == 7
    assert proc.stdout == "rc=1\n"
    assert status(tmp_path, "thing") == f"failed: compiler said no; log {log}"


def test_exit_69_records_what_this_machine_cannot_do(tmp_path):
    script = 'cannot() { echo "cluster: a private cluster needs root; set KUBECONFIG" >&2; return 69; }\n' \
             'part cluster "Kubernetes cluster" cannot || echo "rc=$?"\n'
    proc = run_parts(tmp_path, script)
    assert proc.stdout == "rc=69\n"
    assert proc.stderr == "setup: Kubernetes cluster: not here: a private cluster needs root; set KUBECONFIG\n"
    assert status(tmp_path, "cluster") == "unavailable: a private cluster needs root; set KUBECONFIG"


def test_a_part_that_needs_an_unavailable_part_is_unavailable_but_fails_when_that_part_failed(tmp_path):
    script = 'no_engine() { echo "engine: no apt-get" >&2; return 69; }\n' \
             'broken_engine() { echo "engine: dockerd did not start" >&2; return 1; }\n' \
             'needs_it() { echo "nomad: no container engine; run scripts/engine up first" >&2; return 1; }\n' \
             'part engine engine no_engine || true\n' \
             'part --needs engine nomad "Nomad agent" needs_it || true\n' \
             'part engine engine broken_engine || true\n' \
             'part --needs engine cluster "Kubernetes cluster" needs_it || true\n'
    run_parts(tmp_path, script)
    assert status(tmp_path, "nomad") == \
        "unavailable: needs the engine part, which this machine cannot run: no apt-get"
    assert status(tmp_path, "cluster").startswith("failed: no container engine; run scripts/engine up first; log ")


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("1", 1), ("", 0), ("false", 0)])
def test_a_failed_part_fails_the_set_up_under_ci_only(tmp_path, ci, code):
    script = 'part ok_part "fine" echo "fine: yes"\n' \
             'part broken "broken part" false || true\n' \
             'part missing "missing part" bash -c "exit 69" || true\n' \
             'parts_verdict\n'
    proc = run_parts(tmp_path, script, CI=ci)
    assert proc.returncode == code, proc.stderr
    assert "setup: failed to start: broken" in proc.stderr.splitlines()[-1]
    assert "missing" not in proc.stderr.splitlines()[-1]


def test_unavailable_parts_alone_never_fail_the_set_up(tmp_path):
    proc = run_parts(tmp_path, 'part missing "missing part" bash -c "exit 69" || true\nparts_verdict\n', CI="true")
    assert proc.returncode == 0, proc.stderr


# --- the test side: tests/support/parts.py ----------------------------------------------------------------------

def recorded(tmp_path: Path, **lines: str) -> dict[str, parts.Part]:
    directory = tmp_path / "status"
    directory.mkdir(exist_ok=True)
    for name, line in lines.items():
        (directory / name).write_text(line + "\n")
    return parts.read_parts(directory)


WHY = "no Kubernetes cluster: KUBECONFIG is not set"


@pytest.mark.parametrize(("line", "ci", "fails"), [
    ("unavailable: a private cluster needs root", True, False),
    ("unavailable: a private cluster needs root", False, False),
    ("failed: docker import of the pause image failed; log /x/cluster.log", True, True),
    ("failed: docker import of the pause image failed; log /x/cluster.log", False, False),
    ("ok: private Kubernetes v1.36.3", True, True),
    ("ok: private Kubernetes v1.36.3", False, False),
    ("garbage without a state", True, True),
    ("", True, True),
])
def test_a_missing_part_skips_only_where_the_machine_cannot_run_it_under_ci(tmp_path, line, ci, fails):
    decided = parts.verdict("cluster", WHY, recorded(tmp_path, cluster=line), ci=ci)
    assert decided.fail is fails
    assert decided.message.startswith(WHY)


def test_the_verdict_says_why(tmp_path):
    found = recorded(tmp_path, cluster="unavailable: a private cluster needs root; set KUBECONFIG",
                     nomad="failed: the agent exited; log /c/logs/nomad.log")
    assert parts.verdict("cluster", WHY, found, ci=True).message == (
        f"{WHY} (this machine cannot run the Kubernetes cluster: a private cluster needs root; set KUBECONFIG)")
    assert "failed to start the Nomad agent (the agent exited; log /c/logs/nomad.log)" in \
        parts.verdict("nomad", "no Nomad agent", found, ci=True).message


def test_nothing_recorded_fails_under_ci_and_skips_elsewhere(tmp_path):
    assert parts.verdict("engine", "no container engine", {}, ci=True).fail
    assert not parts.verdict("engine", "no container engine", {}, ci=False).fail
    assert parts.read_parts(tmp_path / "absent") == {}


def test_ci_is_read_from_the_environment():
    assert parts.in_ci({"CI": "true"}) and parts.in_ci({"CI": "TRUE"}) and parts.in_ci({"CI": "1"})
    assert not parts.in_ci({}) and not parts.in_ci({"CI": "false"}) and not parts.in_ci({"CI": ""})


def test_missing_fails_the_test_under_ci_when_the_set_up_failed_the_part(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_CACHE", str(tmp_path))
    recorded(tmp_path, engine="failed: dockerd did not start; log /c/engine.log",
             signing="unavailable: no go command")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="failed to start the container engine"):
        parts.missing("engine", "no container engine")
    with pytest.raises(pytest.skip.Exception, match="cannot run the cosign and signing key: no go command"):
        parts.missing("signing", "no cosign")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="failed to start the container engine"):
        parts.missing("engine", "no container engine")
