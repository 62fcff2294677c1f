"""A real OCI registry for tests: the CNCF distribution registry (`docker-registry`), started per test session.

Images are put into it through the distribution API itself (a blob and a manifest),
so tests of the registry client need no container engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support import parts

CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalRegistry:
    host: str
    process: subprocess.Popen
    auth: tuple[str, str] | None = None
    authorization: str | None = None  # a whole Authorization header (a token server's bearer token)

    def _authorized(self, request: urllib.request.Request) -> urllib.request.Request:
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        elif self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        return request

    def _open(self, request: urllib.request.Request) -> bytes:
        with urllib.request.urlopen(self._authorized(request), timeout=10) as response:
            return response.read()

    def put_image(self, repository: str, content: str, *, user: str = "10001",
                  labels: dict[str, str] | None = None) -> str:
        """Upload a one-config image (no layers) whose config says `user`; return its manifest digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"User": user, "Labels": {"content": content, **(labels or {})}}}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        start = urllib.request.Request(f"http://{self.host}/v2/{repository}/blobs/uploads/", method="POST")
        with urllib.request.urlopen(self._authorized(start), timeout=10) as response:
            location = response.headers["Location"]
        if location.startswith("/"):
            location = f"http://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        self._open(urllib.request.Request(f"{location}{sep}digest={config_digest}", data=config, method="PUT",
                                          headers={"Content-Type": "application/octet-stream"}))
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
                               "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest,
                                          "size": len(config)}, "layers": []}).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self._open(urllib.request.Request(f"http://{self.host}/v2/{repository}/manifests/{digest}", data=manifest,
                                          method="PUT", headers={"Content-Type": MANIFEST_MEDIA_TYPE}))
        return digest

    def tags(self, repository: str) -> list[str]:
        try:
            data = self._open(urllib.request.Request(f"http://{self.host}/v2/{repository}/tags/list"))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise
        return sorted(json.loads(data).get("tags") or [])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_registry(directory: Path, *, htpasswd: str | None = None, auth_config: str | None = None) -> LocalRegistry:
    """Start `docker-registry` on a free loopback port with its storage in `directory`; skip if absent.

    `auth_config` is a whole `auth:` section (a token server's, see tests/support/token_server.py).
    """
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        parts.missing("engine", "no OCI registry: docker-registry is not installed (./scripts/setup installs it)")
    port = free_port()
    auth = ""
    if htpasswd:
        (directory / "htpasswd").write_text(htpasswd)
        auth = f"auth:\n  htpasswd:\n    realm: dockyard-test\n    path: {directory / 'htpasswd'}\n"
    auth = auth_config or auth
    (directory / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
    log = (directory / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(directory / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(directory / 'registry.log').read_text()[-500:]}")
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("docker-registry did not answer within 15 s")
    return LocalRegistry(host=f"127.0.0.1:{port}", process=process)
