"""Software nobody here wrote, on the live cluster through `dockyard promote`: nginx and redis-server from
Debian's packages and a public sample's own Dockerfile, configured only through documented keys, in a
namespace that enforces the restricted Pod Security Standard. What runs is read with kubectl: each pod
runs its image's digest as the image's user (or the uid a key set), its writable paths are its own, and
`status` shows each service's commit from its image's revision label. The sample would run as root: its
first promote is refused before anything is written, with the key that fixes it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.cluster.conftest import kubectl
from tests.support import theirs

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture(scope="module")
def built(kubeconfig, tmp_path_factory) -> theirs.Theirs:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return theirs.build(tmp_path_factory.mktemp("theirs"), env, "dockyard-theirs-cluster")


def pods(namespace: str, service: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={service}",
                              "-o", "json"))["items"]


def test_their_servers_promote_run_as_their_images_user_and_verify_without_version(cluster_workspace, built):
    ws = cluster_workspace
    ws.write_stack("registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                "dockyard:publish": False, "dockyard:services": {s: {} for s in built.refs},
                                "dockyard:prebuilt": built.refs})
    code, _, err = ws.dockyard("build")
    assert code == 0, err[-2000:]

    ws.live_app(**{"dockyard:services": theirs.SERVICES})
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 2, err[-2000:]
    assert "dockyard:services.hello.runAsUser" in out["error"]["message"] and "root" in out["error"]["message"]
    code, history, _ = ws.dockyard("history", "dev", "--json")
    assert history["releases"] == []

    services = {**theirs.SERVICES, "hello": {**theirs.SERVICES["hello"], "runAsUser": theirs.SAMPLE_USER}}
    ws.live_app(**{"dockyard:services": services})
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    assert out["verified"] is True

    expected_user = {"nginx": 33, "redis": 999, "hello": theirs.SAMPLE_USER}
    for service, ref in built.refs.items():
        (pod,) = [p for p in pods(ws.namespace, service) if not p["metadata"].get("deletionTimestamp")]
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is True and status["imageID"].endswith(ref.rsplit("@", 1)[1])
        uid = kubectl("exec", "-n", ws.namespace, pod["metadata"]["name"], "--", "id", "-u").strip()
        assert uid == str(expected_user[service])
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # redis keeps its data in its writable data directory, as its own user.
    (redis,) = pods(ws.namespace, "redis")
    kubectl("exec", "-n", ws.namespace, redis["metadata"]["name"], "--", "redis-cli", "SET", "dockyard", "ok")
    kubectl("exec", "-n", ws.namespace, redis["metadata"]["name"], "--", "redis-cli", "SAVE")
    listing = kubectl("exec", "-n", ws.namespace, redis["metadata"]["name"], "--", "ls", "-ln", "/var/lib/redis/data")
    assert "dump.rdb" in listing and " 999 " in listing

    code, status, err = ws.dockyard("status", "dev", "--json")
    assert code == 0, err[-2000:]
    assert status["environments"]["dev"]["commits"] == built.commits
