"""The OCI registry client against a real distribution registry on loopback: digests, tags, deletes, errors."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.errors import BadInput
from dockyard.release.registries.oci import OciClient, RegistryUnreachable, delete_oci_image
from tests.support.oci_registry import free_port, start_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    import bcrypt

    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    started = start_registry(tmp_path_factory.mktemp("locked"), htpasswd=f"ci:{hashed}\n")
    started.auth = ("ci", "s3cret")
    yield started
    started.stop()


@pytest.fixture()
def no_docker_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def docker_login(tmp_path, monkeypatch, host: str, user: str, secret: str) -> None:
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))


def test_present_and_missing_digests(registry, no_docker_login):
    digest = registry.put_image("dockyard/web", "one")
    client = OciClient(registry.host)
    assert client.manifest_digest("dockyard/web", digest) == digest
    assert client.manifest_digest("dockyard/web", "sha256:" + "0" * 64) is None
    assert client.manifest_digest("dockyard/nothing-here", digest) is None


def test_tag_points_a_new_tag_at_the_same_manifest(registry, no_docker_login):
    digest = registry.put_image("dockyard/web", "tagged")
    client = OciClient(registry.host)
    client.tag("dockyard/web", digest, "release-prod-v7")
    assert "release-prod-v7" in registry.tags("dockyard/web")
    assert client.manifest_digest("dockyard/web", "release-prod-v7") == digest
    assert client.image_config("dockyard/web", digest)["config"]["Labels"] == {"content": "tagged"}


def test_delete_removes_a_manifest_once(registry, no_docker_login):
    digest = registry.put_image("dockyard/web", "doomed")
    assert delete_oci_image(f"{registry.host}/dockyard/web@{digest}") is True
    assert OciClient(registry.host).manifest_digest("dockyard/web", digest) is None
    assert delete_oci_image(f"{registry.host}/dockyard/web@{digest}") is False


def test_unreachable_registry_is_a_failure_naming_the_host(no_docker_login):
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnreachable) as err:
        OciClient(host).manifest_digest("dockyard/web", "sha256:" + "0" * 64)
    assert err.value.exit_code == 1
    assert str(err.value).startswith(f"registry {host} is unreachable")


def test_credentials_come_from_the_docker_config(locked, tmp_path, monkeypatch):
    digest = locked.put_image("dockyard/web", "private")
    docker_login(tmp_path, monkeypatch, locked.host, "ci", "s3cret")
    client = OciClient(locked.host)
    assert client.manifest_digest("dockyard/web", digest) == digest
    client.tag("dockyard/web", digest, "release-dev-v1")
    assert "release-dev-v1" in locked.tags("dockyard/web")


def test_missing_or_wrong_credentials_are_bad_input_naming_docker_login(locked, tmp_path, monkeypatch):
    digest = locked.put_image("dockyard/web", "private-2")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    with pytest.raises(BadInput) as err:
        OciClient(locked.host).manifest_digest("dockyard/web", digest)
    assert "docker has none for it" in err.value.message and err.value.hint == f"docker login {locked.host}"
    docker_login(tmp_path, monkeypatch, locked.host, "ci", "wrong")
    with pytest.raises(BadInput) as err:
        OciClient(locked.host).manifest_digest("dockyard/web", digest)
    assert "credentials docker has for it were refused" in err.value.message
