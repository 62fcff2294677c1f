"""A team's first day without a cluster: `dockyard init` in the team's own repository, `build --local` on the
real engine into the loopback registry, `promote dev --from registry` with dev rendering its manifests (the
GitOps mode): the engine runs the installed dockyard's program with the team's repository as its project.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from dockyard.images import ImageRef
from dockyard.release.registries.oci import OciClient
from tests.support.container_engine import require_engine
from tests.support.team_repo import TeamRun, team_repository

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def test_init_build_and_promote_a_team_repository_with_rendered_manifests(tmp_path: Path) -> None:
    require_engine()
    registry = os.environ.get("DOCKYARD_REGISTRY")
    if not registry:
        pytest.skip("no registry: DOCKYARD_REGISTRY is not set (./scripts/engine up starts one)")
    repo = team_repository(tmp_path / "team")
    dockyard = TeamRun(repo)
    done = dockyard("init", "--target", "kubernetes", "--registry", f"{registry}/team-render", "--yes")
    assert done.returncode == 0, done.stderr
    # GitOps instead of a cluster: dev writes its manifests to a directory.
    dev_file = repo / "Pulumi.dev.yaml"
    dev = yaml.safe_load(dev_file.read_text())
    dev["config"]["dockyard:kubernetes"]["renderDir"] = str(repo / "rendered" / "dev")
    dev_file.write_text(yaml.safe_dump(dev))

    built = dockyard("build", "--local", "--json")
    assert built.returncode == 0, built.stderr[-3000:]
    images = yaml.safe_load(built.stdout)["images"]
    assert sorted(images) == ["api", "frontend"]
    client = OciClient(registry)
    for service, ref in images.items():
        pinned = ImageRef.parse_pinned(ref)
        body, _ = client.manifest(pinned.repository, pinned.digest)
        assert "sha256:" + hashlib.sha256(body).hexdigest() == pinned.digest, service
        config = client.image_config(pinned.repository, pinned.digest)
        # Built from the team's own Dockerfile, with the commit that last changed its folder.
        assert config["config"]["ExposedPorts"] == {"8000/tcp" if service == "api" else "8080/tcp": {}}
        assert len(config["config"]["Labels"]["org.opencontainers.image.revision"]) == 40

    promoted = dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    rendered = [doc for path in sorted((repo / "rendered" / "dev").rglob("*.yaml"))
                for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == "Deployment"]
    running = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in rendered}
    assert {s: r.rsplit("@", 1)[1] for s, r in running.items()} == {s: r.rsplit("@", 1)[1] for s, r in images.items()}
    release = yaml.safe_load((repo / ".dockyard" / "releases" / "dev" / "versions" / "000001.json").read_text())
    assert sorted(release["images"]) == ["api", "frontend"]
