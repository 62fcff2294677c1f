"""A stack lock left by a killed engine: recovered when its holder is provably dead, else one line saying
exactly what to run.

A self-managed (file) backend keeps one lock file per running update under
`.pulumi/locks/…/<stack>/`, naming the holder's pid, host, user and start time. When every lock
of the stack was taken on this host by a process that no longer runs, nothing else can be
updating it: the lock is released the way `pulumi cancel` does (through the Automation API) and
the operation runs again, once. A lock held by a live process, by another host, or kept by a
backend whose locks cannot be read here is left alone.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from dockyard.errors import Conflict


class StackLocked(Conflict):
    """Another update holds the stack's lock (exit 3), or held it when it was killed."""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    hostname: str
    username: str
    timestamp: str
    path: Path

    def describe(self) -> str:
        return f"pid {self.pid} on {self.hostname} (user {self.username}) since {self.timestamp}"

    def dead_here(self) -> bool:
        return self.hostname == socket.gethostname() and not alive(self.pid)


def alive(pid: int) -> bool:
    """Is `pid` a running process on this host? A zombie (killed, not yet reaped) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def backend_dir(project_dir: Path) -> Path | None:
    """The directory of a file backend (PULUMI_BACKEND_URL, or the project's backend.url), or None."""
    url = os.environ.get("PULUMI_BACKEND_URL")
    if not url:
        try:
            url = ((yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}).get("backend") or {}).get("url")
        except (OSError, yaml.YAMLError, AttributeError):
            url = None
    if not url or not url.startswith("file://"):
        return None
    parsed = urlparse(url)
    path = Path(os.path.expanduser(unquote(parsed.netloc + parsed.path)))
    return path if path.is_absolute() else project_dir / path


def holders(project_dir: Path, stack: str) -> list[LockHolder] | None:
    """The stack's lock holders in a file backend; None when the backend is not one this can read."""
    base = backend_dir(project_dir)
    if base is None:
        return None
    found = []
    for path in sorted((base / ".pulumi" / "locks").glob("**/*.json")):
        if path.parent.name != stack:
            continue
        try:
            data = json.loads(path.read_text())
            found.append(LockHolder(pid=int(data["pid"]), hostname=str(data.get("hostname", "")),
                                    username=str(data.get("username", "")),
                                    timestamp=str(data.get("timestamp", "")), path=path))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a lock we cannot read is not one we may remove
    return found


def cancel_command(stack: str, project_dir: Path) -> str:
    backend = os.environ.get("PULUMI_BACKEND_URL")
    prefix = f"PULUMI_BACKEND_URL={backend} " if backend else ""
    return f"{prefix}pulumi cancel --stack {stack} --yes --cwd {project_dir}"


def recover(project_dir: Path, stack: str, cancel: Callable[[], None],
            log: Callable[[str], None]) -> tuple[bool, str]:
    """Release a lock whose holder died on this host. Returns (released, what to tell the user otherwise)."""
    found = holders(project_dir, stack)
    command = cancel_command(stack, project_dir)
    if found is None:
        return False, f"if no update of {stack} is running any more, release its lock: {command}"
    if not found:
        return False, f"wait for the other update of {stack} to finish (its lock is gone now); then run it again"
    living = [h for h in found if not h.dead_here()]
    if living:
        return False, (f"held by {living[0].describe()}; if that update is no longer running, release the lock: "
                       f"{command}")
    for holder in found:
        log(f"{stack}: its lock was left by {holder.describe()}, which no longer runs: releasing it "
            "(pulumi cancel)")
    cancel()
    return True, ""
