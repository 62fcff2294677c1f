"""A real Nomad agent (scripts/nomad), the real engine and registry, and a project whose environment runs there."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import parts
from tests.support.engine_project import EngineProject

ROOT = Path(__file__).resolve().parents[2]
HOW = "./scripts/nomad up starts one"


def _exported(script: str) -> dict[str, str]:
    try:
        out = subprocess.run([str(ROOT / "scripts" / script), "env"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            found[key] = value
    return found


def nomad_get(address: str, path: str, token: str | None = None) -> Any:
    request = urllib.request.Request(address + path, headers={"X-Nomad-Token": token} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def nomad_call(address: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(address + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"X-Nomad-Token": token} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@dataclass(frozen=True)
class Agent:
    address: str
    token: str | None

    def get(self, path: str) -> Any:
        return nomad_get(self.address, path, self.token)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return nomad_call(self.address, method, path, body, self.token)


@pytest.fixture(scope="session")
def agent() -> Agent:
    """The agent `./scripts/nomad env` names (or NOMAD_ADDR), with a ready node whose Docker driver is healthy."""
    address = os.environ.get("NOMAD_ADDR") or _exported("nomad").get("NOMAD_ADDR")
    if not address:
        parts.missing("nomad", f"no Nomad agent: NOMAD_ADDR is not set and scripts/nomad has none running; {HOW}")
    token = os.environ.get("NOMAD_TOKEN")
    try:
        nodes = nomad_get(address, "/v1/nodes", token)
    except (urllib.error.URLError, OSError) as err:
        parts.missing("nomad", f"no Nomad agent: {address} does not answer ({getattr(err, 'reason', err)}); {HOW}")
    if not any(n.get("Status") == "ready" and (n.get("Drivers") or {}).get("docker", {}).get("Healthy")
               for n in nodes):
        parts.missing("nomad", f"no Nomad agent: {address} has no ready node with a healthy Docker driver; {HOW}")
    return Agent(address.rstrip("/"), token)


@dataclass(frozen=True)
class Images:
    web_v1: str
    web_v2: str
    worker: str
    missing: str  # in the registry's web repository, but a digest nothing was ever pushed as
    commits: dict[str, str]  # reference -> the commit its /version reports


def _docker(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    proc = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


@pytest.fixture(scope="session")
def images(agent: Agent) -> Images:
    """images/web (two builds) and images/worker built with the real engine and pushed to the loopback registry."""
    env = {**os.environ, **{k: v for k, v in _exported("engine").items() if k not in os.environ},
           "DOCKER_BUILDKIT": "0"}
    if shutil.which("docker") is None or not env.get("DOCKYARD_REGISTRY"):
        parts.missing("engine", "no container engine or registry for the Nomad agent to pull from; run ./scripts/engine up")
    registry = env["DOCKYARD_REGISTRY"]
    run = secrets.token_hex(4)
    refs, commits = {}, {}
    for name, service, commit in (("web_v1", "web", f"{run}a"), ("web_v2", "web", f"{run}b"),
                                  ("worker", "worker", f"{run}a")):
        tag = f"{registry}/dockyard-nomad-test/{service}:{commit}"
        args = ["build", "-q", "-t", tag, "--build-arg", f"COMMIT_SHA={commit}"]
        if env.get("DOCKYARD_PYTHON_IMAGE"):
            args += ["--build-arg", f"PYTHON_IMAGE={env['DOCKYARD_PYTHON_IMAGE']}"]
        _docker(env, *args, str(ROOT / "images" / service))
        pushed = _docker(env, "push", tag, timeout=300)
        digest = next(w for w in pushed.split() if w.startswith("sha256:"))
        refs[name] = f"{registry}/dockyard-nomad-test/{service}@{digest}"
        commits[refs[name]] = commit
    missing = f"{registry}/dockyard-nomad-test/web@sha256:{'0' * 56}{run}"
    return Images(commits=commits, missing=missing, **refs)


class Project(EngineProject):
    """A project of its own (the real program via `main:`), on a file backend, run with the real engine."""

    def __init__(self, directory: Path, agent: Agent) -> None:
        extra = {"NOMAD_ADDR": agent.address, **({"NOMAD_TOKEN": agent.token} if agent.token else {})}
        try:
            super().__init__(directory, user="nomad-test", env=extra)
        except Exception as err:  # noqa: BLE001 - the engine's own one line
            parts.missing("pulumi", f"no Pulumi engine: {err}; ./scripts/setup builds it")

    def registry(self, web: str, worker: str) -> None:
        self.write_stack("registry", {
            "dockyard:role": "registry", "dockyard:registry": "external", "dockyard:publish": False,
            "dockyard:services": {"web": {}, "worker": {}}, "dockyard:prebuilt": {"web": web, "worker": worker}})

    def remove_all(self) -> None:
        listed = subprocess.run(["pulumi", "stack", "ls", "--json", "--cwd", str(self.dir), "--non-interactive"],
                                capture_output=True, text=True, env=self.env, timeout=120)
        for stack in json.loads(listed.stdout or "[]"):
            subprocess.run(["pulumi", "stack", "rm", "--yes", "--force", "-s", stack["name"], "--cwd",
                            str(self.dir), "--non-interactive"], capture_output=True, env=self.env, timeout=120)
