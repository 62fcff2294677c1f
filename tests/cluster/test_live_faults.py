"""Fault tests on a real Kubernetes cluster: automatic rollback, an interrupted deploy, admission refusal.

What runs is read with kubectl (a client dockyard does not control), never from dockyard's own output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.cluster.conftest import kubectl, pod_digests, private_component
from tests.e2e.conftest import PROJECT_DIR

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def digest(ref: str) -> str:
    return ref.rsplit("@", 1)[1]


def test_promote_whose_health_check_fails_rolls_back_to_known_good_and_pods_run_its_digest(cluster_workspace,
                                                                                        images):
    ws = cluster_workspace
    good, broken = images.web("ok"), images.web("broken")
    ws.registry_of(good)
    ws.live_app()
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0, err[-2000:]
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(good)}

    ws.registry_of(broken)
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 1, err[-2000:]
    message = out["error"]["message"]
    assert "release 2 of dev failed verification" in message and "rolled back automatically to release 1" in message
    assert "Traceback" not in err
    # What runs, as kubectl sees it: the known-good digest again, on every ready pod.
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(good)}
    code, history, _ = ws.dockyard("history", "dev", "--json")
    newest = history["releases"][0]
    assert newest["rollback"]["cause"] == "automatic" and newest["rollback"]["to"] == 1
    code, status, _ = ws.dockyard("status", "dev", "--json")
    dev = status["environments"]["dev"]
    assert dev["images"]["web"] == good and dev["knownGood"] == newest["version"]


def test_deploy_interrupted_by_the_api_server_stopping_completes_on_the_next_deploy(cluster_workspace, images):
    ws = cluster_workspace
    private_component("kube-apiserver", "stopped")
    first, second = images.web("ok"), images.web("ok2")
    ws.registry_of(first)
    ws.live_app()
    code, _, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes")
    assert code == 0, err[-2000:]

    ws.registry_of(second)
    engine_log = ws.dir / ".dockyard" / "logs" / "engine.log"
    offset = engine_log.stat().st_size if engine_log.exists() else 0
    promote = ws.popen("promote", "dev", "--from", "registry", "--yes")
    # Wait until the engine updates the Deployment, then take the API server away under it.
    deadline = time.monotonic() + 180
    while True:
        assert promote.poll() is None, promote.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the engine never started updating the Deployment"
        text = engine_log.read_text()[offset:] if engine_log.exists() else ""
        if any("apps/v1:Deployment" in line and "updating" in line for line in text.splitlines()):
            break
        time.sleep(0.05)
    os.kill(private_component("kube-apiserver", "stopped"), signal.SIGKILL)
    try:
        _, err = promote.communicate(timeout=600)
        assert promote.returncode != 0, err[-2000:]
    finally:
        subprocess.run([str(PROJECT_DIR / "scripts" / "cluster"), "up"], check=True, capture_output=True,
                       timeout=180)
    code, history, _ = ws.dockyard("history", "dev", "--json")
    assert [r["version"] for r in history["releases"]] == [2, 1]  # the interrupted release is kept

    code, out, err = ws.dockyard("deploy", "dev", "--json")
    assert code == 0, err[-3000:]
    assert out["version"] == 2 and out["verified"] is True
    code, status, _ = ws.dockyard("status", "dev", "--json")
    dev = status["environments"]["dev"]
    assert dev["deployed"] == 2 and dev["knownGood"] == 2
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(second)}


def test_a_deployment_the_restricted_profile_refuses_is_refused_by_admission_and_reported_in_one_line(
        cluster_workspace, images, tmp_path):
    ws = cluster_workspace
    # A program whose pods break the restricted profile: the real one with one field changed, as a
    # regression in the manifests would. Only the cluster's admission controller can refuse it here.
    program = tmp_path / "program"
    program.mkdir()
    (program / "__main__.py").write_text(f"""
import runpy, sys
sys.path.insert(0, {str(PROJECT_DIR)!r})
from dockyard.targets.kubernetes import manifests as k8s_manifests
_pod_spec = k8s_manifests.pod_spec
def pod_spec(*args, **kwargs):
    spec = _pod_spec(*args, **kwargs)
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    return spec
k8s_manifests.pod_spec = pod_spec
runpy.run_path({str(PROJECT_DIR / "__main__.py")!r}, run_name="__main__")
""")
    project = (ws.dir / "Pulumi.yaml")
    project.write_text(project.read_text().replace(f"main: {os.path.relpath(PROJECT_DIR, ws.dir)}",
                                                   f"main: {program}"))
    ws.registry_of(images.web("ok"))
    ws.live_app()
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 1, err[-2000:]
    message = out["error"]["message"]
    assert "\n" not in message and "Traceback" not in err
    assert 'violates PodSecurity "restricted' in message and "allowPrivilegeEscalation" in message, message
    assert "web" in message and "no known-good release" in message
    # The refusal is the cluster's: no pod of web exists at all.
    assert json.loads(kubectl("get", "pods", "-n", ws.namespace, "-o", "json"))["items"] == []
