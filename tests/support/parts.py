"""What `./scripts/setup` recorded about each part of this machine, and what a test does when one it needs is missing.

The set-up writes one file per part (python, actionlint, chromium, engine, signing, pulumi, cluster, nomad) in
$DOCKYARD_CACHE/status (default ~/.cache/dockyard/status), one line each:

    ok: <what it uses>
    unavailable: <why this machine cannot run it>
    failed: <why>; log <file>

A test whose part is missing skips when this machine cannot run that part, and says why. Under CI=true it
fails otherwise (the set-up failed to start the part, recorded nothing, or the part stopped since), so a
set-up that broke cannot pass as a run of skipped tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

LABELS = {"python": "Python packages", "actionlint": "actionlint", "engine": "container engine",
          "signing": "cosign and signing key", "pulumi": "Pulumi engine", "cluster": "Kubernetes cluster",
          "nomad": "Nomad agent", "chromium": "headless Chromium"}


@dataclass(frozen=True)
class Part:
    name: str
    state: str  # ok | unavailable | failed (anything else counts as failed)
    detail: str


@dataclass(frozen=True)
class Verdict:
    fail: bool
    message: str


def status_dir() -> Path:
    return Path(os.environ.get("DOCKYARD_CACHE") or Path.home() / ".cache" / "dockyard") / "status"


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def read_parts(directory: Path) -> dict[str, Part]:
    """Each part's recorded outcome; an unreadable or empty file counts as a failed part."""
    parts = {}
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            line = (path.read_text(errors="replace").splitlines() or [""])[0]
        except OSError as err:
            line = f"failed: unreadable status file {path} ({err.strerror})"
        state, sep, detail = line.partition(":")
        if not sep or state.strip() not in ("ok", "unavailable", "failed"):
            state, detail = "failed", f"unreadable status {line!r} in {path}"
        parts[path.name] = Part(path.name, state.strip(), detail.strip())
    return parts


def verdict(name: str, why: str, parts: Mapping[str, Part], *, ci: bool) -> Verdict:
    """Skip or fail a test whose part `name` is missing (`why`: one line naming what is missing)."""
    label = LABELS.get(name, name)
    part = parts.get(name)
    if part is not None and part.state == "unavailable":
        return Verdict(False, f"{why} (this machine cannot run the {label}: {part.detail})")
    if part is None:
        if ci:
            return Verdict(True, f"{why}; ./scripts/setup recorded nothing about the {label} "
                                 f"in {status_dir()} (CI=true: run ./scripts/setup first)")
        return Verdict(False, why)
    if part.state == "ok":
        return Verdict(ci, f"{why}, though ./scripts/setup started the {label} ({part.detail}); has it stopped?")
    return Verdict(ci, f"{why}: ./scripts/setup failed to start the {label} ({part.detail})"
                       + ("; CI=true makes that a failure" if ci else ""))


def missing(name: str, why: str) -> NoReturn:
    """Skip the test, or fail it where this machine can run the part (see the module's docstring)."""
    decided = verdict(name, why, read_parts(status_dir()), ci=in_ci())
    if decided.fail:
        pytest.fail(decided.message, pytrace=False)
    pytest.skip(decided.message)


def report_line() -> str | None:
    """One line for pytest's header: each part's recorded state."""
    parts = read_parts(status_dir())
    if not parts:
        return f"set-up parts: none recorded in {status_dir()} (./scripts/setup records them)"
    listed = ", ".join(f"{p.name} {p.state}" for p in parts.values())
    return f"set-up parts ({status_dir()}): {listed}" + ("; CI=true" if in_ci() else "")
