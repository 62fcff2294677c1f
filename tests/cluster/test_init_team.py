"""A team's first day, as README "Your own services" tells it: `dockyard init` in the team's own repository
(services/api, frontend/, a compose.yaml, its own infra/ package), `dockyard build --local` on the real engine,
`dockyard promote dev --from registry` onto the live cluster, verified; what runs is read with kubectl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
import yaml

from tests.cluster.conftest import kubectl, pod_digests
from tests.support.container_engine import require_engine
from tests.support.team_repo import TeamRun, team_repository

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def digests(images: dict[str, str]) -> dict[str, str]:
    return {service: ref.rsplit("@", 1)[1] for service, ref in images.items()}


def test_init_build_and_promote_a_team_repository_to_a_verified_release_on_the_live_cluster(kubeconfig, tmp_path):
    require_engine()
    registry = os.environ.get("DOCKYARD_REGISTRY")
    if not registry:
        pytest.skip("no registry: DOCKYARD_REGISTRY is not set (./scripts/engine up starts one)")
    repo = team_repository(tmp_path / "team")
    project = f"team-{uuid.uuid4().hex[:6]}"
    dockyard = TeamRun(repo, {"KUBECONFIG": str(kubeconfig)})

    done = dockyard("init", "--target", "kubernetes", "--store", "file", "--registry", f"{registry}/{project}",
                    "--project", project, "--yes")
    assert done.returncode == 0, done.stderr
    assert "dockyard promote dev --from registry" in done.stdout.splitlines()[-1]
    services = yaml.safe_load((repo / "Pulumi.yaml").read_text())["config"]["dockyard:services"]["value"]
    assert services["api"]["context"] == "services/api" and services["api"]["healthCheckPath"] == "/healthz"
    assert services["frontend"]["healthCheckPath"] == "/ready" and "cache" not in services
    # The repository holds no copy of dockyard, and its own infra/ folder is untouched.
    assert sorted(p.name for p in repo.iterdir() if p.suffix == ".py") == ["__main__.py"]
    assert (repo / "infra" / "main.tf").read_text() == "# the team's own infrastructure code\n"

    namespace = f"{project}-dev"
    try:
        built = dockyard("build", "--local", "--json")
        assert built.returncode == 0, built.stderr[-3000:]
        images = yaml.safe_load(built.stdout)["images"]
        assert sorted(images) == ["api", "frontend"]
        promoted = dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
        assert promoted.returncode == 0, promoted.stderr[-3000:]
        # What runs, as kubectl sees it: each service's pods on the digest the build pushed.
        for service, digest in digests(images).items():
            assert set(pod_digests(namespace, service).values()) == {digest}, service
        status = dockyard("status", "dev", "--json")
        dev = yaml.safe_load(status.stdout)["environments"]["dev"]
        assert dev["deployed"] == 1 and digests(dev["images"]) == digests(images)
    finally:
        dockyard.pulumi("destroy", "--yes", "--skip-preview", "-s", "dev")
        if shutil.which("kubectl") or os.environ.get("DOCKYARD_KUBECTL"):
            try:
                kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
            except subprocess.CalledProcessError:
                pass
