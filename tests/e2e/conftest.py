"""The real engine on a local file backend: a workspace per test module, stacks removed afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.release import local
from infra.release.demo import SERVICES, app_config
from tests.support.oci_registry import LocalRegistry, start_registry

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCKYARD = [sys.executable, "-m", "infra.release.cli"]


class Workspace:
    """A project of its own (the real program via `main:`), its stacks and the engine's environment."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.env = {**os.environ, **local.local_engine_env(directory / "state", PROJECT_DIR),
                    "PYTHONPATH": str(PROJECT_DIR), "DOCKYARD_USER": "e2e"}
        local.require_engine(self.env)
        (directory / "Pulumi.yaml").write_text(yaml.safe_dump({
            "name": "dockyard", "runtime": {"name": "python", "options": {"virtualenv": str(PROJECT_DIR / ".venv")}},
            "main": os.path.relpath(PROJECT_DIR, directory)}))

    def write_stack(self, stack: str, config: dict[str, Any]) -> None:
        (self.dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))

    def app(self, stack: str, **overrides: Any) -> dict[str, Any]:
        config = app_config(self.dir, stack)
        config["dockyard:trust"] = "none"  # these images are unsigned on purpose; tests/signing covers the gate
        config.update(overrides)
        self.write_stack(stack, config)
        return config

    def registry(self, build: str, **overrides: Any) -> None:
        """A registry stack recording images another CI pushed (to the session's real registry)."""
        config = {"dockyard:role": "registry", "dockyard:registry": "external", "dockyard:publish": False,
                  "dockyard:services": {s: {} for s in SERVICES},
                  "dockyard:prebuilt": {s: image(s, build) for s in SERVICES}}
        config.update(overrides)
        self.write_stack("registry", config)

    def dockyard(self, *args: str, timeout: float = 600) -> tuple[int, Any, str]:
        proc = subprocess.run([*DOCKYARD, *args, "--project-dir", str(self.dir)], capture_output=True, text=True,
                              env=self.env, cwd=self.dir, timeout=timeout)
        out: Any = proc.stdout
        if "--json" in args and proc.stdout.strip():
            out = json.loads(proc.stdout)
        return proc.returncode, out, proc.stderr

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*DOCKYARD, *args, "--project-dir", str(self.dir)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.dir)

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pulumi", *args, "--cwd", str(self.dir), "--non-interactive"], capture_output=True,
                              text=True, env=self.env, timeout=600, check=check)

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json", "--show-secrets", "-s", stack).stdout)

    def stacks(self) -> list[str]:
        listed = json.loads(self.pulumi("stack", "ls", "--json").stdout)
        return sorted(s["name"] for s in listed)

    def remove_all(self) -> None:
        for stack in self.stacks() if (self.dir / "state").exists() else []:
            self.pulumi("destroy", "--yes", "--skip-preview", "-s", stack, check=False)
            self.pulumi("stack", "rm", "--yes", "--force", "-s", stack, check=False)


_REGISTRY: list[LocalRegistry] = []
_PUSHED: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="session", autouse=True)
def oci_registry(tmp_path_factory):
    """A real registry holding the images the end-to-end releases name: promote checks each digest there."""
    if os.environ.get("DOCKYARD_SKIP_E2E") == "1":
        yield None
        return
    registry = start_registry(tmp_path_factory.mktemp("e2e-registry"))
    _REGISTRY.append(registry)
    yield registry
    registry.stop()
    _REGISTRY.clear()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    if os.environ.get("DOCKYARD_SKIP_E2E") == "1":
        pytest.skip("DOCKYARD_SKIP_E2E=1")
    ws = Workspace(tmp_path_factory.mktemp("e2e"))
    try:
        yield ws
    finally:
        ws.remove_all()


def image(service: str, build: str) -> str:
    """The pinned reference of `service` as built by `build`: pushed to the session's registry once."""
    if (service, build) not in _PUSHED:
        registry = _REGISTRY[0]
        digest = registry.put_image(f"dockyard-e2e/{service}", f"{service}/{build}")
        _PUSHED[service, build] = f"{registry.host}/dockyard-e2e/{service}@{digest}"
    return _PUSHED[service, build]


def rendered_deployments(render_dir: Path) -> dict[str, str]:
    found = {}
    for path in render_dir.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                found[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]["containers"][0]["image"]
    return found
