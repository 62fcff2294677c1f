"""Registry credentials exactly where docker keeps them, and the token request docker would make.

The Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) names a credential
helper per host (`credHelpers`), one for every host (`credsStore`), or keeps credentials itself
(`auths`). As in docker, the first of those that applies is the only one asked. A login with an
identity token (`az acr login`, `docker login` against registries that issue refresh tokens)
stores `identitytoken` beside an empty password, or a helper answers with the username
`<token>`: that token is exchanged for access at the registry's token endpoint with an OAuth2
refresh-token grant, never sent as a password.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import BadInput

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
TOKEN_USER = "<token>"  # a helper's username that marks its secret as an identity token
CLIENT_ID = "dockyard"


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str
    identity_token: str | None = None

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


def docker_config() -> dict:
    base = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        return json.loads((base / "config.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise BadInput(f"cannot read the Docker config {base / 'config.json'}: {err}") from None


def _hostname(key: str) -> str:
    """A Docker config key (`https://host/v1/`, `host`) as the host it is for."""
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    return key.split("/", 1)[0]


def find_credentials(host: str, config: dict | None = None) -> Credentials | None:
    """What docker would log in to `host` with, or None (anonymous)."""
    config = docker_config() if config is None else config
    hub = host == "registry-1.docker.io"
    server = DOCKER_HUB_KEY if hub else host
    names = {"index.docker.io", "docker.io", "registry-1.docker.io"} if hub else {host}
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[k] for k in helpers if _hostname(k) in names), None) or config.get("credsStore")
    if helper:
        return _from_helper(helper, server)
    auths = config.get("auths") or {}
    entry = auths.get(server) or next((v for k, v in auths.items() if _hostname(k) in names), None)
    if not entry:
        return None
    user, _, secret = base64.b64decode(entry.get("auth") or "").decode().partition(":")
    token = entry.get("identitytoken") or None
    if not (user or secret or token):
        return None
    return Credentials(user, secret, token)


def _from_helper(helper: str, server: str) -> Credentials | None:
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=server, capture_output=True,
                              text=True, timeout=30)
    except FileNotFoundError:
        raise BadInput(f"the Docker config names credential helper {helper!r}, but docker-credential-{helper} "
                       "is not on PATH", hint=f"install it, or remove it from {_config_path()}") from None
    if done.returncode != 0:
        return None  # the helper has nothing for this host: anonymous, as docker goes on
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise BadInput(f"docker-credential-{helper} get answered something other than JSON for {server}") from None
    user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    if user == TOKEN_USER:
        return Credentials("", "", secret)
    return Credentials(user, secret) if user or secret else None


def _config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def token_request(realm: str, params: dict[str, str], scope: str,
                  credentials: Credentials | None) -> tuple[str, str, dict[str, str], bytes | None]:
    """The request for a bearer token: (method, url, headers, body).

    With an identity token, an OAuth2 refresh-token grant (POST, form-encoded), as docker sends it;
    else a GET carrying the username and password (or nothing, for anonymous pulls).
    """
    if credentials and credentials.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                "client_id": CLIENT_ID, "scope": scope,
                **({"service": params["service"]} if "service" in params else {})}
        return ("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(form).encode())
    query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
    sep = "&" if "?" in realm else "?"
    headers = {"Authorization": credentials.basic()} if credentials else {}
    return "GET", f"{realm}{sep}{urllib.parse.urlencode(query)}", headers, None
