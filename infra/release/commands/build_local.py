"""Running the real engine on this machine: a local file backend and the engine scripts/setup builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.release.engine import ENGINE_HINT


def engine_bin(project_dir: Path) -> Path | None:
    """The directory holding `pulumi` and its plugins, when it is not on PATH already."""
    script = project_dir / "scripts" / "build-engine"
    if script.is_file():
        try:
            printed = subprocess.run([str(script), "--print-path"], capture_output=True, text=True, timeout=30,
                                     check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            printed = ""
        if printed and (Path(printed) / "pulumi").is_file():
            return Path(printed)
    return None


def local_engine_env(state_dir: Path, project_dir: Path) -> dict[str, str]:
    """Environment for the engine on a file backend that never downloads anything."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PULUMI_BACKEND_URL": state_dir.resolve().as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", ""),
        # Plugins come from PATH (built by scripts/setup): never fetch one.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_HOME": str((state_dir.parent / "pulumi-home").resolve()),
        # Run the program with the interpreter that runs dockyard (the project's .venv).
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    tools = engine_bin(project_dir)
    path = os.environ.get("PATH", "")
    if tools is not None:
        path = f"{install_plugins(tools, Path(env['PULUMI_HOME']))}{os.pathsep}{path}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    return env


def install_plugins(tools: Path, pulumi_home: Path) -> Path:
    """Put the built engine where the engine expects it; return the bin dir to put on PATH.

    Resource plugins go under `$PULUMI_HOME/plugins/resource-<name>-v<version>/` (the version the
    Python SDK asks for), so the engine loads them as installed plugins instead of warning that it
    uses one found on PATH. The CLI and the language host are linked into a bin dir of their own.
    """
    from importlib.metadata import PackageNotFoundError, version

    bin_dir = pulumi_home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for binary in tools.iterdir():
        if binary.name.startswith("pulumi-resource-"):
            name = binary.name.removeprefix("pulumi-resource-")
            try:
                wanted = version(f"pulumi-{name}")
            except PackageNotFoundError:
                continue
            _link(binary, pulumi_home / "plugins" / f"resource-{name}-v{wanted}" / binary.name)
        else:
            _link(binary, bin_dir / binary.name)
    return bin_dir


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def require_engine(env: dict[str, str]) -> str:
    pulumi = shutil.which("pulumi", path=env.get("PATH"))
    if pulumi is None:
        raise DockyardError("the pulumi CLI is not available", hint=ENGINE_HINT)
    return pulumi


def apply(env: dict[str, str]) -> None:
    """The Automation API runs the CLI as a child of this process: give it the environment."""
    os.environ.update(env)
    sys.stdout.flush()
