"""A real container engine and registry for the image tests (see scripts/engine)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import parts

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "images").glob("*/Dockerfile"))

# The settings the ECS task definitions and Kubernetes pods run every service with.
HARDENING = (
    "--read-only", "--tmpfs", "/tmp",
    "--user", "10001:10001",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)

MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


@dataclass(frozen=True)
class Engine:
    env: dict[str, str]
    registry: str
    python_image: str | None

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc

    def inspect(self, ref: str) -> dict:
        return json.loads(self.run("inspect", ref).stdout)[0]

    def push(self, ref: str) -> str:
        """Push REF; return the digest the registry acknowledged."""
        out = self.run("push", ref, timeout=300).stdout
        found = re.findall(r"digest: (sha256:[0-9a-f]{64})", out)
        assert found, f"no digest in the output of docker push {ref}: {out[-500:]}"
        return found[-1]

    def manifest(self, repository: str, reference: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://{self.registry}/v2/{repository}/manifests/{reference}",
                                         headers={"Accept": MANIFEST_TYPES})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def delete_manifest(self, repository: str, digest: str) -> None:
        request = urllib.request.Request(f"http://{self.registry}/v2/{repository}/manifests/{digest}",
                                         method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.URLError:
            pass

    def start(self, image: str, *extra: str) -> str:
        return self.run("run", "-d", *HARDENING, *extra, image).stdout.strip()

    def wait_healthy(self, container: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            state = self.inspect(container)["State"]
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                return
            if not state.get("Running"):
                break
            time.sleep(0.5)
        logs = self.run("logs", "--tail", "20", container, check=False)
        raise AssertionError(f"{container[:12]} not healthy (state {state.get('Status')}, health "
                             f"{state.get('Health')}); logs: {logs.stdout[-1000:]}{logs.stderr[-1000:]}")

    def remove(self, *containers: str) -> None:
        if containers:
            self.run("rm", "-f", *containers, check=False)


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _engine_env() -> dict[str, str]:
    """The test's environment plus scripts/engine env when the caller did not export it."""
    env = dict(os.environ)
    if "DOCKYARD_REGISTRY" not in env or "DOCKER_HOST" not in env:
        try:
            out = subprocess.run([str(ROOT / "scripts" / "engine"), "env"], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return env
        for line in out.stdout.splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep and key not in env:
                env[key] = value
    return env


@pytest.fixture(scope="session")
def engine() -> Engine:
    if shutil.which("docker") is None:
        parts.missing("engine", "no container engine: no docker command; run ./scripts/engine up")
    env = _engine_env()
    env["DOCKER_BUILDKIT"] = "0"  # the legacy builder: BuildKit needs buildx and its frontend image
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env,
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["docker version failed"])[-1]
        parts.missing("engine", f"no container engine: {reason}; run ./scripts/engine up")
    registry = env.get("DOCKYARD_REGISTRY")
    if not registry:
        parts.missing("engine", "no container engine: DOCKYARD_REGISTRY is not set; run ./scripts/engine up")
    return Engine(env=env, registry=registry, python_image=env.get("DOCKYARD_PYTHON_IMAGE"))


@pytest.fixture(scope="session")
def commit() -> str:
    """A commit id of this run only, so an image built earlier can never pass for this build."""
    return secrets.token_hex(20)


@pytest.fixture(scope="session")
def images(engine: Engine, commit: str) -> Iterator[dict[str, str]]:
    """Every images/*/Dockerfile, built once per session: service -> local tag."""
    built: dict[str, str] = {}
    try:
        for service in SERVICES:
            tag = f"dockyard-test/{service}:{commit[:12]}"
            args = ["build", "-q", "-t", tag, "--build-arg", f"COMMIT_SHA={commit}"]
            if engine.python_image:
                args += ["--build-arg", f"PYTHON_IMAGE={engine.python_image}"]
            engine.run(*args, str(ROOT / "images" / service), timeout=900)
            built[service] = tag
        yield built
    finally:
        if built:
            engine.run("rmi", *built.values(), check=False)
