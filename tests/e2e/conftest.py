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

from dockyard.release.commands.demo import SERVICES, app_config
from tests.support.engine_project import EngineProject
from tests.support.oci_registry import LocalRegistry, start_registry

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCKYARD = [sys.executable, "-m", "dockyard.release.cli"]


class Workspace(EngineProject):
    """A project of its own (the real program via `main:`), its stacks and the engine's environment."""

    timeout = 600.0

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, user="e2e")

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
