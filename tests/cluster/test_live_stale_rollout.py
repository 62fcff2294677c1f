"""A fix promoted over a stuck rollout, on a real cluster: the earlier generation's
ProgressDeadlineExceeded is still in the Deployment's status when dockyard first looks, and must not
fail the good release. The controller-manager is paused (SIGSTOP) while the fix is applied, so the
stale condition is there for certain, then resumed: only the private cluster allows that.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.cluster.conftest import kubectl, pod_digests, private_component

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def deployment(namespace: str) -> dict:
    return json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json"))


def wait_for_image(namespace: str, image: str, promote) -> dict:
    """The Deployment once the engine has applied `image` to it (while `promote` goes on)."""
    until = time.monotonic() + 180
    while True:
        assert promote.poll() is None, promote.communicate()[1][-3000:]
        assert time.monotonic() < until, f"the engine never applied {image}"
        seen = deployment(namespace)
        if seen["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return seen
        time.sleep(0.2)


def deadline_exceeded(status: dict) -> bool:
    return any(c.get("reason") == "ProgressDeadlineExceeded" for c in status.get("conditions") or [])


def test_a_stale_progress_deadline_of_an_earlier_generation_does_not_fail_a_good_release(cluster_workspace, images):
    ws = cluster_workspace
    pid = private_component("kube-controller-manager", "paused")
    good, broken, fix = images.web("ok"), images.web("broken"), images.web("ok2")
    ws.registry_of(good)
    ws.live_app()
    code, _, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes")
    assert code == 0, err[-2000:]
    # A rollout that gets stuck: a release whose readiness never passes, and once the engine has applied
    # it, a short deadline (set by hand, as an operator might). Kept deployed (--no-rollback).
    ws.registry_of(broken)
    stuck = ws.popen("promote", "dev", "--from", "registry", "--yes", "--no-rollback")
    wait_for_image(ws.namespace, broken, stuck)
    kubectl("patch", "deployment", "web", "-n", ws.namespace, "--type", "merge", "-p",
            '{"spec": {"progressDeadlineSeconds": 2}}')
    _, err = stuck.communicate(timeout=300)
    # The deadline of the observed generation: dockyard fails at once, with the controller's words.
    assert stuck.returncode == 1 and "rollout exceeded its deadline" in err, err[-2000:]
    assert deadline_exceeded(deployment(ws.namespace)["status"])

    ws.registry_of(fix)
    os.kill(pid, signal.SIGSTOP)
    try:
        # The deadline back to its default, then the fix: two generations the paused controller has not seen.
        kubectl("patch", "deployment", "web", "-n", ws.namespace, "--type", "merge", "-p",
                '{"spec": {"progressDeadlineSeconds": 600}}')
        promote = ws.popen("promote", "dev", "--from", "registry", "--yes", "--json")
        seen = wait_for_image(ws.namespace, fix, promote)
        # What dockyard reads now: the fix's generation, not observed, beside the old deadline.
        assert seen["status"]["observedGeneration"] < seen["metadata"]["generation"]
        assert deadline_exceeded(seen["status"])
        time.sleep(3)  # dockyard polls the stale status meanwhile
        assert promote.poll() is None, promote.communicate()[1][-3000:]
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = promote.communicate(timeout=300)
    assert promote.returncode == 0, err[-3000:]
    assert json.loads(out)["verified"] is True
    assert set(pod_digests(ws.namespace, "web").values()) == {fix.rsplit("@", 1)[1]}
