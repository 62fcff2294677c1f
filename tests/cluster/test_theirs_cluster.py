"""Software nobody here wrote, on the live cluster through `dockyard promote`: nginx and redis-server from
Debian's packages, then a public sample's own Dockerfile, configured only through documented keys, in a
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
def engine_env(kubeconfig) -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


def publish(ws: Any, refs: dict[str, str]) -> None:
    ws.write_stack("registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                "dockyard:publish": False, "dockyard:services": {s: {} for s in refs},
                                "dockyard:prebuilt": refs})
    code, _, err = ws.dockyard("build")
    assert code == 0, err[-2000:]


def check_runs_as_built(namespace: str, refs: dict[str, str], users: dict[str, int]) -> dict[str, str]:
    """Every service's one ready pod runs its digest, hardened, as `users` says; service -> pod name."""
    names = {}
    for service, ref in refs.items():
        items = json.loads(kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={service}",
                                   "-o", "json"))["items"]
        (pod,) = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is True and status["imageID"].endswith(ref.rsplit("@", 1)[1])
        (container,) = pod["spec"]["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"] == theirs.SMALL  # kubernetesResources, not a Fargate size
        names[service] = pod["metadata"]["name"]
        assert kubectl("exec", "-n", namespace, names[service], "--", "id", "-u").strip() == str(users[service])
    return names


def test_debian_nginx_and_redis_promote_as_their_images_built_them_and_verify_without_version(
        cluster_workspace, engine_env):
    ws = cluster_workspace
    built = theirs.build_servers(engine_env, "dockyard-theirs-cluster")
    publish(ws, built.refs)
    ws.live_app(**{"dockyard:services": {s: theirs.SERVICES[s] for s in built.refs}})
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    assert out["verified"] is True
    pods = check_runs_as_built(ws.namespace, built.refs, {"nginx": 33, "redis": 999})
    kubectl("exec", "-n", ws.namespace, pods["redis"], "--", "redis-cli", "SET", "dockyard", "ok")
    kubectl("exec", "-n", ws.namespace, pods["redis"], "--", "redis-cli", "SAVE")
    listing = kubectl("exec", "-n", ws.namespace, pods["redis"], "--", "ls", "-ln", "/var/lib/redis/data")
    assert "dump.rdb" in listing and " 999 " in listing
    code, status, err = ws.dockyard("status", "dev", "--json")
    assert code == 0, err[-2000:]
    assert status["environments"]["dev"]["commits"] == built.commits


def test_a_public_samples_own_dockerfile_is_refused_as_root_then_runs_as_the_uid_a_key_sets(
        cluster_workspace, engine_env, tmp_path_factory):
    ws = cluster_workspace
    sample = theirs.build_sample(tmp_path_factory.mktemp("sample"), engine_env, "dockyard-theirs-cluster")
    publish(ws, sample.refs)
    ws.live_app(**{"dockyard:services": {"hello": theirs.SERVICES["hello"]}})
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 2, err[-2000:]
    assert "dockyard:services.hello.runAsUser" in out["error"]["message"] and "root" in out["error"]["message"]
    assert ws.dockyard("history", "dev", "--json")[1]["releases"] == []

    ws.live_app(**{"dockyard:services": {"hello": {**theirs.SERVICES["hello"], "runAsUser": theirs.SAMPLE_USER}}})
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    check_runs_as_built(ws.namespace, sample.refs, {"hello": theirs.SAMPLE_USER})
    code, status, _ = ws.dockyard("status", "dev", "--json")
    assert status["environments"]["dev"]["commits"] == sample.commits
