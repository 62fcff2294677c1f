"""A project of its own for tests on the real engine: the real program (via `main:`) on a file backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from dockyard.release.commands import build_local as local

ROOT = Path(__file__).resolve().parents[2]
DOCKYARD = [sys.executable, "-m", "dockyard.release.cli"]


class EngineProject:
    """Its directory, the engine's environment, its stack files, and `dockyard` run inside it."""

    timeout = 900.0  # seconds one `dockyard` command may take

    def __init__(self, directory: Path, *, user: str, env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.env = {**os.environ, **local.local_engine_env(directory / "state", ROOT),
                    "PYTHONPATH": str(ROOT), "DOCKYARD_USER": user, **(env or {})}
        local.require_engine(self.env)
        (directory / "Pulumi.yaml").write_text(yaml.safe_dump({
            "name": "dockyard", "runtime": {"name": "python", "options": {"virtualenv": str(ROOT / ".venv")}},
            "main": os.path.relpath(ROOT, directory)}))

    def write_stack(self, stack: str, config: dict[str, Any]) -> None:
        (self.dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))

    def dockyard(self, *args: str, timeout: float | None = None) -> tuple[int, Any, str]:
        proc = subprocess.run([*DOCKYARD, *args, "--project-dir", str(self.dir)], capture_output=True, text=True,
                              env=self.env, cwd=self.dir, timeout=timeout or self.timeout)
        out: Any = proc.stdout
        if "--json" in args and proc.stdout.strip():
            out = json.loads(proc.stdout)
        return proc.returncode, out, proc.stderr
