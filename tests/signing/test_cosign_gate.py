"""The trust gate with real cosign against a real registry: sign, attest, promote; every refusal leaves the
store as it was. Skipped with one line where cosign or the registry is missing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from dockyard.errors import BadInput
from dockyard.images import ImageRef
from dockyard.release.commands import promotion
from dockyard.release.context import Context
from dockyard.release.registries.oci import OciClient
from dockyard.release.project import Project
from dockyard.release.trust.signing import Signer, predicate
from dockyard.release.trust.gate import find_cosign
from dockyard.errors import DockyardError
from tests.release.conftest import FakeEngine
from tests.support.oci_registry import start_registry

COMMIT = "1" * 40
OTHER_COMMIT = "2" * 40


@pytest.fixture(scope="module")
def cosign() -> str:
    try:
        return find_cosign()
    except DockyardError:
        pytest.skip("no cosign: ./scripts/build-cosign builds it (./scripts/setup does too)")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, cosign):
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory, cosign) -> dict[str, Path]:
    made = {}
    for name in ("ours", "theirs"):
        directory = tmp_path_factory.mktemp(f"key-{name}")
        subprocess.run([cosign, "generate-key-pair", "--output-key-prefix", "cosign"], cwd=directory, check=True,
                       capture_output=True, env={**os.environ, "COSIGN_PASSWORD": ""})
        made[name] = directory / "cosign"
    return made


def push(registry, repository: str, content: str, revision: str) -> str:
    """A one-config image (no layers) whose revision label names `revision`; returns the pinned reference."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {
        "org.opencontainers.image.revision": revision, "content": content}}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    start = urllib.request.Request(f"http://{registry.host}/v2/{repository}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(start, timeout=10) as response:
        location = response.headers["Location"]
    location = location if location.startswith("http") else f"http://{registry.host}{location}"
    sep = "&" if "?" in location else "?"
    urllib.request.urlopen(urllib.request.Request(f"{location}{sep}digest={config_digest}", data=config,
                                                  method="PUT",
                                                  headers={"Content-Type": "application/octet-stream"}), timeout=10)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)}, "layers": []}).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{digest}", data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}), timeout=10)
    return f"{registry.host}/{repository}@{digest}"


def sign(ref: str, key: Path, commit: str, monkeypatch) -> float:
    monkeypatch.setenv("DOCKYARD_SIGNING_KEY", str(key) + ".key")
    monkeypatch.setenv("COSIGN_PASSWORD", "")
    signer = Signer(Context(project=None, deployer_factory=lambda: None).registries, "key")  # type: ignore[arg-type]
    started = time.monotonic()
    signer.sign("web", ref, predicate(service="web", repository="https://example.invalid/shop", commit=commit,
                                      inputs="build-0123", builder="test", built_at="2026-01-01T00:00:00Z"))
    return time.monotonic() - started


@pytest.fixture()
def project(tmp_path, keys) -> Project:
    (tmp_path / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (tmp_path / "Pulumi.registry.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "registry", "dockyard:registry": "external", "dockyard:publish": False,
        "dockyard:services": {"web": {}},
        "dockyard:prebuilt": {"web": "r.example/web@sha256:" + "0" * 64}}}))
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
        "dockyard:releaseDir": str(tmp_path / "releases"), "dockyard:kubernetes": {"renderDir": "rendered"},
        "dockyard:services": {"web": {"port": 8080}},
        "dockyard:trust": {"keys": [str(keys["ours"]) + ".pub"]}}}))
    return Project(tmp_path)


def promote(project: Project, ref: str):
    engine = FakeEngine(project)
    engine.registry_images = {"web": ref}
    ctx = Context(project=project, deployer_factory=lambda: engine, user="auditor")
    return promotion.promote(ctx, "prod", "registry", services=[], reason=None, deploy=False, yes=True,
                             release_hold=False)


def store(project: Project) -> list[str]:
    return sorted(p.read_text() for p in (project.dir / "releases").rglob("*.json"))


def refused(project: Project, ref: str) -> str:
    before = store(project)
    with pytest.raises(BadInput) as err:
        promote(project, ref)
    assert err.value.exit_code == 2
    assert store(project) == before
    return err.value.message


def test_signed_and_attested_image_promotes_and_the_release_names_signer_and_commit(project, registry, keys,
                                                                                     monkeypatch):
    ref = push(registry, "shop/web", "signed", COMMIT)
    seconds = sign(ref, keys["ours"], COMMIT, monkeypatch)
    print(f"sign + attest: {seconds:.2f} s")
    started = time.monotonic()
    result = promote(project, ref)
    print(f"verify signature + attestation: {time.monotonic() - started:.2f} s")
    assert result.version == 1
    (release,) = [json.loads(t) for t in store(project) if '"images"' in t]
    proof = release["verified"]["web"]
    assert proof["commit"] == COMMIT and proof["keyId"].startswith("sha256:") and proof["attestation"].startswith("sha256:")
    # The signature lives beside the image, where any cosign verifier finds it.
    digest = ImageRef.parse_pinned(ref).digest
    assert OciClient(registry.host).manifest_digest("shop/web", digest.replace(":", "-") + ".sig")


def test_unsigned_image_is_refused(project, registry):
    ref = push(registry, "shop/web", "unsigned", COMMIT)
    message = refused(project, ref)
    assert message == f"web: {ImageRef.parse_pinned(ref).digest}: not signed (no signature in the registry beside it)"


def test_image_signed_with_another_key_is_refused(project, registry, keys, monkeypatch):
    ref = push(registry, "shop/web", "theirs", COMMIT)
    sign(ref, keys["theirs"], COMMIT, monkeypatch)
    assert "signed, but not by a key or identity this environment trusts" in refused(project, ref)


def test_attestation_naming_another_commit_is_refused(project, registry, keys, monkeypatch):
    ref = push(registry, "shop/web", "other-commit", COMMIT)
    sign(ref, keys["ours"], OTHER_COMMIT, monkeypatch)
    assert f"its attestation names commit {OTHER_COMMIT[:12]}, not {COMMIT[:12]}" in refused(project, ref)


def test_tampered_signature_is_refused(project, registry, keys, monkeypatch):
    ref = push(registry, "shop/web", "tampered", COMMIT)
    sign(ref, keys["ours"], COMMIT, monkeypatch)
    # Rewrite the signature manifest so its signature annotation no longer matches its payload.
    repository, digest = "shop/web", ImageRef.parse_pinned(ref).digest
    tag = digest.replace(":", "-") + ".sig"
    client = OciClient(registry.host)
    body, media_type = client.manifest(repository, tag)
    manifest = json.loads(body)
    annotations = manifest["layers"][0]["annotations"]
    signature = annotations["dev.cosignproject.cosign/signature"]
    annotations["dev.cosignproject.cosign/signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    urllib.request.urlopen(urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}", data=json.dumps(manifest).encode(), method="PUT",
        headers={"Content-Type": media_type}), timeout=10)
    message = refused(project, ref)
    assert message.startswith(f"web: {digest}: ") and "not signed" not in message


def test_rollback_to_a_deleted_digest_is_refused_before_anything_is_written(project, registry, keys, monkeypatch):
    first = push(registry, "shop/web", "release-1", COMMIT)
    second = push(registry, "shop/web", "release-2", COMMIT)
    for ref in (first, second):
        sign(ref, keys["ours"], COMMIT, monkeypatch)
        promote(project, ref)
    assert OciClient(registry.host).delete("shop/web", ImageRef.parse_pinned(first).digest)
    before = store(project)
    ctx = Context(project=project, deployer_factory=lambda: FakeEngine(project), user="auditor")
    with pytest.raises(BadInput) as err:
        promotion.rollback(ctx, "prod", to=1, services=[], reason=None, deploy=False, yes=True)
    assert err.value.exit_code == 2 and f"web: {first} is missing" in err.value.message
    assert "pick another" in (err.value.hint or "")
    assert store(project) == before
