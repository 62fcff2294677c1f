"""A small client for the OCI distribution API: is a digest there, tag it, delete it.

Works with any registry that speaks the distribution API (GHCR, Harbor,
Artifactory, GitLab, Docker Hub, the CNCF distribution registry), with the
credentials docker itself would use: `auths` in the Docker config
(`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), or the credential
helper it names (`credHelpers`, `credsStore`). Bearer-token and basic
challenges are both answered.

Plain http is used for loopback registries only (as docker does), and for
hosts listed in DOCKYARD_INSECURE_REGISTRIES (comma-separated).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import BadInput, DockyardError
from dockyard.images import DOCKER_HUB, ImageRef

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT = 15.0


class RegistryUnreachable(DockyardError):
    """The registry did not answer: exit 1 (it may answer later)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str


def api_host(registry: str | None) -> str:
    """The host that serves the API: Docker Hub's shorthand is served by registry-1.docker.io."""
    return "registry-1.docker.io" if registry in (None, DOCKER_HUB, "index.docker.io") else registry


def api_repository(ref: ImageRef) -> str:
    """The repository path the API uses: Docker Hub's official images live under library/."""
    if api_host(ref.registry) == "registry-1.docker.io" and "/" not in ref.repository:
        return f"library/{ref.repository}"
    return ref.repository


def docker_config() -> dict:
    base = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        return json.loads((base / "config.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise BadInput(f"cannot read the Docker config {base / 'config.json'}: {err}") from None


def find_credentials(host: str, config: dict | None = None) -> Credentials | None:
    """What docker would log in to `host` with, or None."""
    config = docker_config() if config is None else config
    keys = [host, f"https://{host}", f"http://{host}"]
    if host == "registry-1.docker.io":
        keys = ["https://index.docker.io/v1/", "index.docker.io", "docker.io", *keys]
    helper = next((config.get("credHelpers", {}).get(k) for k in keys if k in config.get("credHelpers", {})), None)
    for key in keys:
        entry = config.get("auths", {}).get(key)
        if entry and entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, secret)
        if entry and entry.get("identitytoken"):
            return Credentials("<token>", entry["identitytoken"])
    helper = helper or config.get("credsStore")
    return _from_helper(helper, keys[0]) if helper else None


def _from_helper(helper: str, host: str) -> Credentials | None:
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=host, capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError:
        raise BadInput(f"the Docker config names credential helper {helper!r}, but docker-credential-{helper} "
                       "is not on PATH") from None
    if done.returncode != 0:
        return None  # the helper has nothing for this host: try anonymously
    data = json.loads(done.stdout)
    return Credentials(data.get("Username", ""), data.get("Secret", ""))


def plain_http(host: str) -> bool:
    insecure = {h.strip() for h in os.environ.get("DOCKYARD_INSECURE_REGISTRIES", "").split(",") if h.strip()}
    return bool(_LOOPBACK.match(host)) or host in insecure


class OciClient:
    """One registry host. Every call raises RegistryUnreachable, BadInput (credentials), or answers."""

    def __init__(self, host: str, credentials: Credentials | None = None, *, lookup: bool = True) -> None:
        self.host = host
        self.base = f"{'http' if plain_http(host) else 'https'}://{host}"
        self.credentials = credentials if credentials or not lookup else find_credentials(host)
        self._tokens: dict[str, str] = {}
        self.calls = 0  # requests sent, for benchmarks and tests

    # -- the API ---------------------------------------------------------------------------------

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest `reference` (a tag or digest) resolves to, or None when the registry has no such manifest."""
        status, headers, body = self._request("HEAD", repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if status == 404:
            return None
        self._check(status, repository, reference)
        digest = headers.get("docker-content-digest")
        if digest:
            return digest
        # Some registries leave the header off HEAD answers: hash what GET serves.
        return "sha256:" + hashlib.sha256(self.manifest(repository, reference)[0]).hexdigest()

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        status, headers, body = self._request("GET", repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if status == 404:
            raise BadInput(f"{self.host}/{repository}: no manifest {reference}")
        self._check(status, repository, reference)
        return body, headers.get("content-type", MANIFEST_TYPES[1])

    def blob(self, repository: str, digest: str) -> bytes:
        status, _, body = self._request("GET", repository, f"blobs/{digest}")
        self._check(status, repository, digest)
        return body

    def tag(self, repository: str, digest: str, tag: str) -> None:
        """Point `tag` at the manifest `digest` (the same bytes under a second name)."""
        body, media_type = self.manifest(repository, digest)
        status, _, answer = self._request("PUT", repository, f"manifests/{tag}", data=body,
                                          content_type=media_type, push=True)
        self._check(status, repository, tag, expected=(201, 200), body=answer)

    def delete(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest; False when it was already gone."""
        status, _, answer = self._request("DELETE", repository, f"manifests/{digest}", push=True)
        if status == 404:
            return False
        self._check(status, repository, digest, expected=(202, 200), body=answer)
        return True

    def image_config(self, repository: str, digest: str) -> dict:
        """The image configuration (user, labels, env) of a single-platform manifest."""
        manifest = json.loads(self.manifest(repository, digest)[0])
        if "config" not in manifest:
            manifest = json.loads(self.manifest(repository, manifest["manifests"][0]["digest"])[0])
        return json.loads(self.blob(repository, manifest["config"]["digest"]))

    # -- plumbing --------------------------------------------------------------------------------

    def _check(self, status: int, repository: str, reference: str, *, expected: tuple[int, ...] = (200,),
               body: bytes = b"") -> None:
        if status in expected:
            return
        where = f"{self.host}/{repository}"
        if status in (401, 403):
            how = ("the credentials docker has for it were refused" if self.credentials
                   else "it wants credentials and docker has none for it")
            raise BadInput(f"registry {self.host} refused access to {repository} ({status}): {how}",
                           hint=f"docker login {self.host}")
        if status == 405:
            raise BadInput(f"registry {self.host} does not allow this on {repository} ({status})",
                           hint="deleting needs the registry's delete API enabled")
        detail = body[:200].decode(errors="replace").strip()
        raise DockyardError(f"registry {where}: {reference} answered {status}{f': {detail}' if detail else ''}")

    def _request(self, method: str, repository: str, path: str, *, accept: tuple[str, ...] = (),
                 data: bytes | None = None, content_type: str | None = None,
                 push: bool = False) -> tuple[int, dict[str, str], bytes]:
        url = f"{self.base}/v2/{repository}/{path}"
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        if method == "DELETE":
            scope = f"repository:{repository}:delete"
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        auth = self._tokens.get(scope)
        status, answer, body = self._send(method, url, headers, data, auth)
        if status == 401 and "www-authenticate" in answer:
            auth = self._authorize(answer["www-authenticate"], scope)
            if auth:
                self._tokens[scope] = auth
                status, answer, body = self._send(method, url, headers, data, auth)
        return status, answer, body

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              auth: str | None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={**headers, **({"Authorization": auth} if auth else {})})
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, _Headers(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            return err.code, _Headers(err.headers.items()), err.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryUnreachable(f"registry {self.host} is unreachable ({reason})",
                                      hint="is it running, and is the host right? "
                                           "For the local one: ./scripts/engine status") from None

    def _authorize(self, challenge: str, scope: str) -> str | None:
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        basic = None
        if self.credentials:
            pair = f"{self.credentials.username}:{self.credentials.secret}".encode()
            basic = "Basic " + base64.b64encode(pair).decode()
        if kind.lower() == "basic":
            return basic
        if kind.lower() != "bearer" or "realm" not in params:
            return None
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        status, _, body = self._send("GET", url, {}, None, basic)
        if status != 200:
            return None
        token = json.loads(body)
        value = token.get("token") or token.get("access_token")
        return f"Bearer {value}" if value else None


class _Headers(dict):
    """Response headers by lowercase name (registries differ in how they spell them)."""

    def __init__(self, items: object) -> None:
        super().__init__((name.lower(), value) for name, value in items)  # type: ignore[attr-defined]


class RegistryClients:
    """One client per registry host, made on first use (as AwsClients does for AWS)."""

    def __init__(self) -> None:
        self._clients: dict[str, OciClient] = {}

    def client(self, host: str) -> OciClient:
        if host not in self._clients:
            self._clients[host] = OciClient(host)
        return self._clients[host]

    def for_ref(self, ref: ImageRef) -> OciClient:
        return self.client(api_host(ref.registry))

    @property
    def calls(self) -> int:
        """Requests sent to every registry so far."""
        return sum(client.calls for client in self._clients.values())


def delete_oci_image(text: str, clients: RegistryClients | None = None) -> bool:
    """Delete a pinned image from its registry; False when it was already gone."""
    ref = ImageRef.parse_pinned(text)
    client = (clients or RegistryClients()).for_ref(ref)
    return client.delete(api_repository(ref), ref.digest or "")
