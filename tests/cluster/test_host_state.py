"""The NetworkPolicy agent leaves the host as it found it: its own stop and cleanup, compared by snapshot.

`scripts/cluster up` records a snapshot of the host (`scripts/cluster snapshot`: iptables and
ip6tables chains, built-in chains' rules, nftables tables, ipsets, bridges, sysctls, mounts, the
kubelet's paths, kubepods cgroups, modules) just before it starts the agent. Stopping the agent
(`scripts/cluster netpol stop`, what `down` does first) must bring the host back to it. The
cluster itself is left running; `down` compares with the snapshot taken before `up` the same way.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.cluster import netpol
from tests.cluster.conftest import CLUSTER_DIR
from tests.e2e.conftest import PROJECT_DIR

pytestmark = [pytest.mark.cluster]

CLUSTER = str(PROJECT_DIR / "scripts" / "cluster")
AGENT_STATE = re.compile(r"^(chain \S+ \S+ (KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)|ipset KUBE-(SRC|DST)-|"
                         r"rule .*KUBE-ROUTER-)")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLUSTER, *args], capture_output=True, text=True, timeout=180)


def lines(text: str) -> set[str]:
    """A snapshot's lines, pods' mounts aside (they come and go while the cluster runs)."""
    return {line for line in text.splitlines() if line and not line.startswith("mount ")}


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
