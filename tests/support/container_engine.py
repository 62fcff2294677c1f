"""The real container engine for tests: the one DOCKER_HOST (or docker's default socket) names.

`./scripts/test` exports what `./scripts/engine env` prints, so the suite uses the
engine and base image the set-up started; where there is none, tests that need
one are skipped with one line saying why (see tests/support/parts.py: under CI=true they fail
unless this machine cannot run an engine).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support import parts


def require_engine() -> str:
    """The docker command, or skip: one line naming why there is no engine."""
    docker = shutil.which("docker")
    if docker is None:
        parts.missing("engine", "no container engine: no docker command on PATH (./scripts/setup installs and starts one)")
    probe = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True,
                           timeout=30)
    if probe.returncode != 0:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        parts.missing("engine", f"no container engine: nothing answers at {where} (./scripts/engine up starts one)")
    return docker


def base_image() -> str | None:
    """The base image the set-up chose (None: the Dockerfiles' own default, from Docker Hub)."""
    return os.environ.get("DOCKYARD_PYTHON_IMAGE") or None
