"""`dockyard build --local` with the real engine and a real registry: build, push, record; unchanged means
no build and no push; a change to one service rebuilds that service only."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dockyard.images import ImageRef
from dockyard.release.context import Context
from dockyard.release.registries.local_build import build_local
from dockyard.release.registries.oci import OciClient
from dockyard.release.project import Project
from tests.release.conftest import FakeEngine
from tests.support.container_engine import require_engine
from tests.support.oci_registry import start_registry

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin:/usr/local/bin"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**GIT_ENV, "HOME": str(cwd)}).stdout.strip()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_engine()
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture()
def project(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    directory = tmp_path / "project"
    shutil.copytree(ROOT / "images", directory / "images",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pkr.hcl"))
    (directory / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (directory / "Pulumi.registry.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "registry", "dockyard:registry": "oci",
        "dockyard:oci": {"host": registry.host, "prefix": "shop"}}}))
    git(directory, "init", "-q", "-b", "main")
    git(directory, "add", ".")
    git(directory, "commit", "-q", "-m", "first")
    return directory


def build(project_dir: Path, **options) -> tuple[dict, FakeEngine]:
    engine = FakeEngine(Project(project_dir))
    ctx = Context(project=Project(project_dir), deployer_factory=lambda: engine, log=print)
    options = {"services": [], "push_only": False, "against": None, **options}
    return build_local(ctx, **options).to_json(), engine


def test_builds_pushes_and_records_then_an_unchanged_rerun_builds_and_pushes_nothing(project, registry):
    first, engine = build(project)
    assert sorted(first["built"]) == ["web", "worker"] and sorted(first["pushed"]) == ["web", "worker"]
    commit = git(project, "rev-parse", "HEAD")
    client = OciClient(registry.host)
    for service, ref in first["images"].items():
        parsed = ImageRef.parse_pinned(ref)
        repository, digest = parsed.repository, parsed.digest
        assert parsed.registry == registry.host and repository == f"shop/{service}"
        assert parsed.tag.startswith("build-")
        # The registry serves these exact bytes under this digest.
        body, _ = client.manifest(repository, digest)
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        image = client.image_config(repository, digest)
        assert image["config"]["User"] == "10001:10001"
        assert image["config"]["Labels"]["org.opencontainers.image.revision"] == commit
    # Recorded as the registry stack's prebuilt, and published by its `up`.
    recorded = yaml.safe_load((project / "Pulumi.registry.yaml").read_text())["config"]["dockyard:prebuilt"]
    assert recorded == first["images"] and engine.registry_images == first["images"] and first["recorded"]

    again, _ = build(project)
    assert again["built"] == [] and again["pushed"] == [] and sorted(again["unchanged"]) == ["web", "worker"]
    assert again["images"] == first["images"]


def test_a_change_to_one_service_rebuilds_that_service_only(project, registry):
    first, _ = build(project, push_only=True)
    app = project / "images" / "web" / "app.py"
    app.write_text(app.read_text().replace("hello from dockyard", "hello from a branch"))
    git(project, "commit", "-qam", "web: new greeting")
    second, _ = build(project, push_only=True)
    assert second["built"] == ["web"] and second["pushed"] == ["web"] and second["unchanged"] == ["worker"]
    assert second["images"]["worker"] == first["images"]["worker"]
    assert second["images"]["web"] != first["images"]["web"]
    assert not second["recorded"]
    assert "dockyard:prebuilt" not in yaml.safe_load((project / "Pulumi.registry.yaml").read_text())["config"]


def test_against_an_environment_lists_the_services_whose_digest_differs(project, registry):
    first, engine = build(project)
    release_dir = project / ".dockyard" / "releases" / "dev"
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
        "dockyard:services": {"web": {"port": 8080}, "worker": {}},
        "dockyard:kubernetes": {"renderDir": "rendered"}}}))
    from dockyard.manifest import Release
    from dockyard.release.stores.file import FileStore
    FileStore(release_dir, where="dev").append(Release.from_dict({"schema": 1, "images": first["images"]}),
                                               expected=None)
    app = project / "images" / "web" / "app.py"
    app.write_text(app.read_text() + "\n# a change\n")
    git(project, "commit", "-qam", "web changed")
    result, _ = build(project, push_only=True, against="dev")
    assert result["changed"] == ["web"] and result["against"] == "dev"
    assert json.dumps(result)  # one JSON document
