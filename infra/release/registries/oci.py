"""A small client for the OCI distribution API: is a digest there, tag it, delete it.

Works with any registry that speaks the distribution API (GHCR, Harbor,
Artifactory, GitLab, Docker Hub, the CNCF distribution registry), with the
credentials docker itself would use (infra/release/registries/docker_auth.py: the
credential helper the Docker config names, else its `auths`, identity tokens
exchanged with a refresh-token grant). Bearer-token and basic challenges are
both answered.

Plain http is used for loopback registries only (as docker does), and for
hosts listed in DOCKYARD_INSECURE_REGISTRIES (comma-separated).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request

from dockyard.errors import BadInput, DockyardError
from dockyard.images import DOCKER_HUB, ImageRef
from dockyard.release.registries.docker_auth import Credentials, docker_config, find_credentials, token_request  # noqa: F401

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


def api_host(registry: str | None) -> str:
    """The host that serves the API: Docker Hub's shorthand is served by registry-1.docker.io."""
    return "registry-1.docker.io" if registry in (None, DOCKER_HUB, "index.docker.io") else registry


def api_repository(ref: ImageRef) -> str:
    """The repository path the API uses: Docker Hub's official images live under library/."""
    if api_host(ref.registry) == "registry-1.docker.io" and "/" not in ref.repository:
        return f"library/{ref.repository}"
    return ref.repository


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
            if self.credentials and self.credentials.identity_token:
                how = "the identity token docker has for it was refused (it may have expired)"
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
        if kind.lower() == "basic":
            return self.credentials.basic() if self.credentials else None
        if kind.lower() != "bearer" or "realm" not in params:
            return None
        method, url, headers, data = token_request(params["realm"], params, scope, self.credentials)
        status, _, body = self._send(method, url, headers, data, headers.pop("Authorization", None))
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
