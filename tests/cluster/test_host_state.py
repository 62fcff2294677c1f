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


AGENT_NAMES = re.compile(r"KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-")
BUILT_IN = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}


def could_be_the_agents(line: str) -> bool:
    """Whether a snapshot line is one the agent could leave, as opposed to what the rest of a running cluster
    changes while the agent runs: kube-proxy's and the CNI's chains and rules, bridges, the sysctls the CNI
    sets for its first pod (the cluster's `down` puts them back), the kubelet's paths."""
    section, *words = line.split()
    if section in {"bridge", "cgroup", "nft", "mount", "sysctl"}:
        return False
    if section == "path":
        return words == ["/var/lib/kube-router"]
    if section == "chain" and words[2] in BUILT_IN:
        return False
    if section in {"chain", "rule"} and ("KUBE-" in line or "CNI-" in line):
        return bool(AGENT_NAMES.search(line))
    return True


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
            # The cluster went on meanwhile (Services, pods, their chains and mounts): only what the agent
            # could have left is compared.
            kept, was = ({line for line in snap if could_be_the_agents(line)} for snap in (now, before))
            assert kept == was, {"left": sorted(kept - was), "gone": sorted(was - kept)}
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


def stop_in_a_fresh_network_namespace(tmp_path, before_start: str, while_running: str) -> dict:
    """`netpol stop` in a new network namespace (iptables and ipsets are per namespace), without the
    cluster: BEFORE_START runs before the baseline snapshot, WHILE_RUNNING between it and the stop.
    Returns the snapshots (baseline, during, after) and the stop's exit status and stderr."""
    missing = [tool for tool in ("unshare", "iptables", "ip6tables", "ipset") if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(missing) or 'unshare'}: a network namespace of its own")
    cluster_dir = tmp_path / "cluster"
    (cluster_dir / "netpol").mkdir(parents=True)
    (cluster_dir / "state.env").write_text("MODE=private\n")
    script = f"""
set -eu
{before_start}
{CLUSTER} snapshot >{cluster_dir}/netpol/baseline
{while_running}
{CLUSTER} snapshot >{tmp_path}/during
{CLUSTER} netpol stop 2>{tmp_path}/stop.err && echo 0 >{tmp_path}/stop.rc || echo $? >{tmp_path}/stop.rc
{CLUSTER} snapshot >{tmp_path}/after
"""
    done = subprocess.run(["unshare", "--net", "bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DOCKYARD_CACHE": str(tmp_path)})
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return {"before": lines((cluster_dir / "netpol" / "baseline").read_text()),
            "during": lines((tmp_path / "during").read_text()),
            "after": lines((tmp_path / "after").read_text()),
            "rc": int((tmp_path / "stop.rc").read_text()),
            "stderr": (tmp_path / "stop.err").read_text()}


def test_the_agents_cleanup_in_a_fresh_network_namespace_leaves_only_what_was_there_before(tmp_path):
    """`netpol stop` against chains and ipsets of the agent's shape, beside a chain and an ipset that were
    there before."""
    seen = stop_in_a_fresh_network_namespace(
        tmp_path,
        before_start="iptables -N KUBE-SERVICES-KEPT && iptables -A FORWARD -j KUBE-SERVICES-KEPT\n"
                     "ipset create KUBE-SRC-KEPT hash:ip",
        while_running=AGENT_LIKE_STATE)
    before, during, after = seen["before"], seen["during"], seen["after"]
    assert {"chain iptables filter KUBE-SERVICES-KEPT", "ipset KUBE-SRC-KEPT"} <= before
    added = during - before
    assert {"chain iptables filter KUBE-ROUTER-FORWARD", "chain ip6tables filter KUBE-ROUTER-INPUT",
            "ipset KUBE-SRC-TESTSRC", "ipset KUBE-DST-TESTDST",
            'rule iptables filter -A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD'
            } <= added, sorted(added)
    assert seen["rc"] == 0, seen["stderr"]
    assert "the host is as before it started" in seen["stderr"]
    assert after == before, {"left": sorted(after - before), "gone": sorted(before - after)}


# What the rest of a cluster adds while the agent runs, most of all right after a cold `up`: kube-proxy's
# chains for Services that got endpoints since, the rules that jump to them, the CNI's bridge for the first pod.
CLUSTER_CHURN = """
iptables -t nat -N KUBE-EXT-CHURNTEST
iptables -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-EXT-CHURNTEST
iptables -N KUBE-PROXY-CANARY
ip link add cni0 type bridge
echo 1 >/proc/sys/net/ipv4/ip_forward
"""


def test_what_the_rest_of_the_cluster_adds_meanwhile_is_not_taken_for_the_agents(tmp_path):
    seen = stop_in_a_fresh_network_namespace(tmp_path, before_start="iptables -t nat -N KUBE-SERVICES\n"
                                             "echo 0 >/proc/sys/net/ipv4/ip_forward",
                                             while_running=CLUSTER_CHURN + AGENT_LIKE_STATE)
    assert seen["rc"] == 0, seen["stderr"]
    assert "the host is as before it started" in seen["stderr"], seen["stderr"]
    # kube-proxy's and the CNI's state is theirs: left alone.
    assert {"chain iptables nat KUBE-EXT-*", "chain iptables filter KUBE-PROXY-CANARY", "bridge cni0"} <= seen["after"]
    assert not any(AGENT_STATE.match(line) for line in seen["after"]), sorted(seen["after"])


def test_what_the_agent_leaves_behind_is_named_in_one_line_with_status_1(tmp_path):
    """An ipset the agent made that a rule outside its chains still uses cannot be destroyed: the stop says so."""
    seen = stop_in_a_fresh_network_namespace(
        tmp_path, before_start="",
        while_running=AGENT_LIKE_STATE + "ipset create KUBE-SRC-BUSYTEST hash:ip\n"
                      "iptables -A INPUT -m set --match-set KUBE-SRC-BUSYTEST src -j ACCEPT\n")
    assert seen["rc"] == 1, seen["stderr"]
    last = seen["stderr"].strip().splitlines()[-1]
    assert "the host differs from before it started" in last, seen["stderr"]
    assert "+ ipset KUBE-SRC-BUSYTEST" in last, last
