"""`dockyard demo` (what ./scripts/demo runs) walks the story to the end with real images on the real engine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from dockyard.images import ImageRef
from dockyard.release.registries.oci import OciClient
from tests.e2e.conftest import PROJECT_DIR, rendered_deployments
from tests.support.container_engine import require_engine

pytestmark = pytest.mark.e2e


def test_demo_builds_real_images_and_every_release_names_digests_the_registry_serves(tmp_path):
    if os.environ.get("DOCKYARD_SKIP_E2E") == "1":
        pytest.skip("DOCKYARD_SKIP_E2E=1")
    require_engine()
    if not os.environ.get("DOCKYARD_REGISTRY"):
        pytest.skip("no registry: DOCKYARD_REGISTRY is not set (./scripts/engine up starts one)")
    workdir = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "dockyard.release.cli", "demo", "--json", "--dir", str(workdir)],
                          capture_output=True, text=True, cwd=PROJECT_DIR, timeout=1500,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["registry"] == os.environ["DOCKYARD_REGISTRY"]
    live = "kubeconfig" in result  # KUBECONFIG named a cluster that answers: dev and prod deployed to it
    # On a cluster: prod's pods after promote and after rollback, and the broken web's automatic rollback.
    assert len(result["steps"]) == (17 if live else 13)
    if os.environ.get("DOCKYARD_SIGNING_PUBLIC_KEY"):
        # The gate refused the unsigned copy once, with the service, the digest and the reason; every
        # release records who signed its images.
        assert "refused, exit 2: web: sha256:" in proc.stderr and ": not signed" in proc.stderr
        prod = json.loads(sorted((workdir / "releases" / "prod" / "versions").glob("*.json"))[-1].read_text())
        assert set(prod["verified"]) == {"web", "worker"}
    # Output for people: numbered steps, no engine chatter (it is in the engine log).
    assert "using pulumi-resource" not in proc.stderr
    assert len(proc.stderr.splitlines()) < (250 if live else 150), proc.stderr
    assert os.path.getsize(result["engineLog"]) > 0
    # The second build rebuilt web only: worker was unchanged, with no build and no push.
    assert result["builds"]["unchanged"] >= 1

    client = OciClient(result["registry"])
    for env, data in result["environments"].items():
        for service, text in data["images"].items():
            ref = ImageRef.parse_pinned(text)
            assert ref.registry == result["registry"], text
            body, _ = client.manifest(ref.repository, ref.digest)
            assert "sha256:" + hashlib.sha256(body).hexdigest() == ref.digest, f"{env} {service}"
            config = client.image_config(ref.repository, ref.digest)["config"]
            assert config["User"].split(":")[0] == "10001"
            revision = config["Labels"]["org.opencontainers.image.revision"]
            assert len(revision) == 40 and all(c in "0123456789abcdef" for c in revision), revision
    if live:
        _check_live(result, workdir)
    else:
        prod = rendered_deployments(workdir / "rendered" / "prod")
        dev = rendered_deployments(workdir / "rendered" / "dev")
        assert prod["web"] != dev["web"]  # prod was rolled back to release 1; dev runs release 2
        assert prod["worker"] == dev["worker"]  # worker was never rebuilt
    assert result["environments"]["prod"]["version"] == 3
    history = sorted((workdir / "releases" / "prod" / "versions").glob("*.json"))
    assert len(history) == 3 and json.loads(history[-1].read_text())["source"] == "rollback:v1"


def _check_live(result: dict, workdir) -> None:
    """After the demo on a cluster, kubectl (a client dockyard does not control) agrees with `dockyard status`."""
    from tests.cluster.conftest import pod_digests

    assert result["environments"]["prod"]["namespace"] == "shop-prod"
    status = json.loads(subprocess.run(
        [sys.executable, "-m", "dockyard.release.cli", "status", "--json", "--project-dir", str(workdir)],
        capture_output=True, text=True, cwd=PROJECT_DIR, timeout=300, check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}).stdout)["environments"]
    for env in ("prod", "dev"):
        namespace = result["environments"][env]["namespace"]
        for service, ref in status[env]["images"].items():
            running = set(pod_digests(namespace, service).values())
            assert running == {ref.rsplit("@", 1)[1]}, f"{env} {service}: pods run {running}, status says {ref}"
    # dev's broken web was rolled back automatically: its newest release restores an older one.
    versions = sorted((workdir / "releases" / "dev" / "versions").glob("*.json"), key=lambda p: int(p.stem))
    newest = json.loads(versions[-1].read_text())
    assert newest["rollback"]["cause"] == "automatic", newest
