"""Registry credentials as docker stores them: identity tokens (refresh-token exchange) and credential
helpers, against a real distribution registry that trusts a real token server, both on loopback."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from dockyard.errors import BadInput
from dockyard.release.registries.oci import OciClient
from tests.support.oci_registry import start_registry
from tests.support.token_server import TokenServer

IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.refresh-token-for-ci.c2lnbmF0dXJl"
ACR_USER = "00000000-0000-0000-0000-000000000000"  # what `az acr login` stores beside the token


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    tokens = TokenServer(tmp_path_factory.mktemp("token-server"), refresh_token=IDENTITY_TOKEN)
    registry = start_registry(tmp_path_factory.mktemp("token-registry"), auth_config=tokens.registry_auth())
    registry.authorization = f"Bearer {tokens.token(['repository:dockyard/web:pull,push'])}"
    yield registry, tokens
    registry.stop()
    tokens.stop()


def docker_config(tmp_path, monkeypatch, data: dict) -> None:
    directory = tmp_path / "docker-config"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))


def credential_helper(tmp_path, monkeypatch, name: str, answers: dict[str, dict]) -> None:
    """A docker-credential-<name> on PATH that answers `get` the way docker's helpers do."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                      f"answers = {json.dumps(answers)}\n"
                      "assert sys.argv[1:] == ['get']\n"
                      "server = sys.stdin.read().strip()\n"
                      "if server not in answers:\n"
                      "    print('credentials not found in native keychain'); sys.exit(1)\n"
                      "print(json.dumps(answers[server]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_an_identity_token_beside_an_empty_password_is_exchanged_for_access(token_registry, tmp_path, monkeypatch):
    registry, tokens = token_registry
    digest = registry.put_image("dockyard/web", "acr")
    # What `az acr login` (docker login with an identity token) leaves in the Docker config.
    auth = base64.b64encode(f"{ACR_USER}:".encode()).decode()
    docker_config(tmp_path, monkeypatch, {"auths": {registry.host: {"auth": auth, "identitytoken": IDENTITY_TOKEN}}})
    tokens.requests.clear()
    client = OciClient(registry.host)
    assert client.manifest_digest("dockyard/web", digest) == digest
    client.tag("dockyard/web", digest, "release-prod-v1")
    assert "release-prod-v1" in registry.tags("dockyard/web")
    grants = [r for r in tokens.requests if r["method"] == "POST"]
    assert grants and all(r["grant_type"] == "refresh_token" for r in grants)
    assert {r["scope"] for r in grants} == {"repository:dockyard/web:pull", "repository:dockyard/web:pull,push"}


def test_a_credential_helper_handing_out_an_identity_token_is_exchanged_too(token_registry, tmp_path, monkeypatch):
    registry, tokens = token_registry
    digest = registry.put_image("dockyard/web", "helper")
    credential_helper(tmp_path, monkeypatch, "acr-test",
                      {registry.host: {"ServerURL": registry.host, "Username": "<token>", "Secret": IDENTITY_TOKEN}})
    # credsStore wins over an entry in auths, as it does for docker (which then keeps only `{}` there).
    docker_config(tmp_path, monkeypatch, {"credsStore": "acr-test",
                                          "auths": {registry.host: {"auth": base64.b64encode(b"stale:x").decode()}}})
    assert OciClient(registry.host).manifest_digest("dockyard/web", digest) == digest


def test_cred_helpers_for_the_host_win_over_creds_store(token_registry, tmp_path, monkeypatch):
    registry, _ = token_registry
    digest = registry.put_image("dockyard/web", "per-host")
    credential_helper(tmp_path, monkeypatch, "per-host",
                      {registry.host: {"Username": "<token>", "Secret": IDENTITY_TOKEN}})
    docker_config(tmp_path, monkeypatch, {"credsStore": "not-installed", "credHelpers": {registry.host: "per-host"}})
    assert OciClient(registry.host).manifest_digest("dockyard/web", digest) == digest


def test_a_refused_identity_token_is_bad_input_naming_the_login(token_registry, tmp_path, monkeypatch):
    registry, _ = token_registry
    digest = registry.put_image("dockyard/web", "expired")
    auth = base64.b64encode(f"{ACR_USER}:".encode()).decode()
    docker_config(tmp_path, monkeypatch, {"auths": {registry.host: {"auth": auth, "identitytoken": "expired"}}})
    with pytest.raises(BadInput) as err:
        OciClient(registry.host).manifest_digest("dockyard/web", digest)
    assert "identity token" in err.value.message and err.value.hint == f"docker login {registry.host}"
