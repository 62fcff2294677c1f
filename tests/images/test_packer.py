"""The worker image built by Packer (images/worker/worker.pkr.hcl), pushed and run hardened."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.images.conftest import ROOT, Engine, sha256_digest
from tests.support import parts

pytestmark = pytest.mark.engine

TEMPLATE = ROOT / "images" / "worker" / "worker.pkr.hcl"


@pytest.fixture(scope="module")
def packer_image(engine: Engine, commit: str, tmp_path_factory):
    """Build and push with packer; yield (repository, pinned reference)."""
    if shutil.which("packer") is None:
        parts.missing("engine", "no packer command: install Debian's packer (./scripts/engine up does)")
    repository = "dockyard-test/worker-packer"
    tagged = f"{engine.registry}/{repository}:{commit[:12]}"
    args = ["packer", "build", "-color=false",
            "-var", f"commit_sha={commit}",
            "-var", f"repository={engine.registry}/{repository}",
            "-var", f"tag={commit[:12]}"]
    if engine.python_image:
        # The base is already in the engine (scripts/engine up put it there).
        args += ["-var", f"python_image={engine.python_image}", "-var", "pull=false"]
    log = tmp_path_factory.mktemp("packer") / "build.log"
    env = {**engine.env, "PACKER_CONFIG_DIR": str(log.parent), "CHECKPOINT_DISABLE": "1"}
    with log.open("w") as out:
        build = subprocess.run([*args, str(TEMPLATE)], env=env, stdout=out, stderr=subprocess.STDOUT,
                               timeout=900)
    assert build.returncode == 0, f"packer build failed; log: {log}\n{log.read_text()[-2000:]}"
    digests = engine.run("image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}",
                         tagged).stdout.split()
    pinned = [d for d in digests if d.startswith(f"{engine.registry}/{repository}@sha256:")]
    assert pinned, f"packer pushed nothing to {engine.registry}/{repository}: {digests}"
    try:
        yield repository, pinned[0]
    finally:
        engine.delete_manifest(repository, pinned[0].split("@", 1)[1])
        engine.run("rmi", tagged, check=False)


def test_packer_image_is_in_the_registry_by_digest(engine, packer_image):
    repository, pinned = packer_image
    digest = pinned.split("@", 1)[1]
    status, headers, body = engine.manifest(repository, digest)
    assert status == 200
    assert headers.get("Docker-Content-Digest") == digest == sha256_digest(body)


def test_packer_image_config_matches_the_dockerfile(engine, packer_image, commit):
    config = engine.inspect(packer_image[1])["Config"]
    assert config["User"].split(":")[0] == "10001"
    assert f"COMMIT_SHA={commit}" in config["Env"]
    assert {"PYTHONUNBUFFERED=1", "HEARTBEAT_FILE=/tmp/worker-heartbeat",
            "WORK_INTERVAL_SECONDS=10"} <= set(config["Env"])
    assert config["Labels"]["org.opencontainers.image.revision"] == commit
    assert config["Cmd"] == ["python", "worker.py"] and not config.get("Entrypoint")
    assert config["WorkingDir"] == "/app"


def test_packer_image_runs_hardened_and_passes_its_check(engine, packer_image):
    container = engine.start(packer_image[1])
    try:
        deadline = time.monotonic() + 30
        check = None
        while time.monotonic() < deadline:
            check = engine.run("exec", container, "python", "worker.py", "--check", check=False)
            if check.returncode == 0:
                break
            time.sleep(0.5)
        assert check is not None and check.returncode == 0, engine.run("logs", container, check=False).stdout
        assert engine.run("exec", container, "id", "-u").stdout.strip() == "10001"
        # Code owned by root and byte-compiled: the service user cannot change it.
        listing = engine.run("exec", container, "sh", "-c",
                             "stat -c '%U %n' /app /app/worker.py /app/__pycache__/*.pyc").stdout.split("\n")
        assert all(line.startswith("root ") for line in listing if line), listing
        assert any(line.endswith(".pyc") for line in listing), listing
        denied = engine.run("exec", container, "sh", "-c", "echo x > /app/new", check=False)
        assert denied.returncode != 0
    finally:
        engine.remove(container)
