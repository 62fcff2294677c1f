"""The NetworkPolicy agent leaves the host as it found it: its own stop and cleanup, compared by snapshot.

`scripts/cluster up` records a snapshot of the host (`scripts/cluster snapshot`: iptables and
ip6tables chains, built-in chains' rules, nftables tables, ipsets, bridges, sysctls, mounts, the
kubelet's paths, kubepods cgroups, modules) just before it starts the agent. Stopping the agent
(`scripts/cluster netpol stop`, what `down` does first) must bring the host back to it. The
cluster itself is left running; `down` compares with the snapshot taken before `up` the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.cluster import netpol
from tests.cluster.conftest import CLUSTER_DIR
from tests.e2e.conftest import PROJECT_DIR


CLUSTER = str(PROJECT_DIR / "scripts" / "cluster")
AGENT_STATE = re.compile(r"^(chain \S+ \S+ (KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)|ipset KUBE-(SRC|DST)-|"
                         r"rule .*KUBE-ROUTER-)")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLUSTER, *args], capture_output=True, text=True, timeout=180)


def lines(text: str) -> set[str]:
    """A snapshot's lines, pods' mounts aside (they come and go while the cluster runs)."""
    return {line for line in text.splitlines() if line and not line.startswith("mount ")}


@pytest.mark.cluster
def test_stopping_the_agent_removes_its_chains_and_ipsets_and_the_host_matches_the_snapshot_before_it(kubeconfig):
    netpol.require_enforcing_agent()
    baseline_file = CLUSTER_DIR / "netpol" / "baseline"
    assert baseline_file.is_file(), "the agent runs but `up` recorded no snapshot before starting it"
    with netpol.agent_lock(exclusive=True):
        before = lines(baseline_file.read_text())
        running = run("snapshot")
        assert running.returncode == 0, running.stderr
        # The snapshot sees what the agent adds: its chains, the jumps to them, its ipsets.
        added = lines(running.stdout) - before
        assert any(AGENT_STATE.match(line) for line in added), sorted(added)[:20]
        assert not any(AGENT_STATE.match(line) for line in before), "the baseline already holds the agent's state"
        try:
            stopped = run("netpol", "stop")
            assert stopped.returncode == 0, stopped.stderr
            assert "the host is as before it started" in stopped.stderr, stopped.stderr
            after = run("snapshot")
            assert after.returncode == 0, after.stderr
            now = lines(after.stdout)
            assert now == before, {"left": sorted(now - before), "gone": sorted(before - now)}
            assert not any(AGENT_STATE.match(line) for line in now)
        finally:
            started = run("netpol", "start")
            assert started.returncode == 0, started.stderr
        netpol.require_enforcing_agent()


# What the agent adds, in its own names and shapes: chains hooked into the built-in ones (both
# families), per-pod and per-policy chains, ipsets of pod addresses that the rules match.
AGENT_LIKE_STATE = """
iptables -N KUBE-ROUTER-FORWARD
iptables -I FORWARD 1 -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD
iptables -N KUBE-POD-FW-TESTPOD
iptables -N KUBE-NWPLCY-TESTPOLICY
ipset create KUBE-SRC-TESTSRC hash:ip
ipset create KUBE-DST-TESTDST hash:ip
ipset add KUBE-SRC-TESTSRC 10.244.0.7
iptables -A KUBE-ROUTER-FORWARD -d 10.244.0.5 -j KUBE-POD-FW-TESTPOD
iptables -A KUBE-POD-FW-TESTPOD -j KUBE-NWPLCY-TESTPOLICY
iptables -A KUBE-NWPLCY-TESTPOLICY -m set --match-set KUBE-SRC-TESTSRC src -m set --match-set KUBE-DST-TESTDST dst -j ACCEPT
ip6tables -N KUBE-ROUTER-INPUT
ip6tables -A INPUT -j KUBE-ROUTER-INPUT
"""


def test_the_agents_cleanup_in_a_fresh_network_namespace_leaves_only_what_was_there_before(tmp_path):
    """Runs without the cluster: `netpol stop` against chains and ipsets of the agent's shape in a new network
    namespace (iptables and ipsets are per namespace), beside a chain and an ipset that were there before."""
    missing = [tool for tool in ("unshare", "iptables", "ip6tables", "ipset") if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(missing) or 'unshare'}: a network namespace of its own")
    cluster_dir = tmp_path / "cluster"
    (cluster_dir / "netpol").mkdir(parents=True)
    (cluster_dir / "state.env").write_text("MODE=private\n")
    script = f"""
set -eu
iptables -N KUBE-SERVICES-KEPT && iptables -A FORWARD -j KUBE-SERVICES-KEPT
ipset create KUBE-SRC-KEPT hash:ip
{CLUSTER} snapshot >{cluster_dir}/netpol/baseline
{AGENT_LIKE_STATE}
{CLUSTER} snapshot >{tmp_path}/during
{CLUSTER} netpol stop 2>{tmp_path}/stop.err && echo 0 >{tmp_path}/stop.rc || echo $? >{tmp_path}/stop.rc
{CLUSTER} snapshot >{tmp_path}/after
"""
    done = subprocess.run(["unshare", "--net", "bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DOCKYARD_CACHE": str(tmp_path)})
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    before = lines((cluster_dir / "netpol" / "baseline").read_text())
    during = lines((tmp_path / "during").read_text())
    after = lines((tmp_path / "after").read_text())
    assert {"chain iptables filter KUBE-SERVICES-KEPT", "ipset KUBE-SRC-KEPT"} <= before
    added = during - before
    assert {"chain iptables filter KUBE-ROUTER-FORWARD", "chain ip6tables filter KUBE-ROUTER-INPUT",
            "ipset KUBE-SRC-TESTSRC", "ipset KUBE-DST-TESTDST",
            'rule iptables filter -A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD'
            } <= added, sorted(added)
    stop_err = (tmp_path / "stop.err").read_text()
    assert (tmp_path / "stop.rc").read_text().strip() == "0", stop_err
    assert "the host is as before it started" in stop_err and "\n" not in stop_err.strip().splitlines()[-1]
    assert after == before, {"left": sorted(after - before), "gone": sorted(before - after)}
