"""`/version`, where an app answers it: read, never required, and cross-checked with the commit its image
records (the `org.opencontainers.image.revision` label the release wrote down as `imageConfig.commit`)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping

from dockyard.errors import DockyardError
from dockyard.release.stores.base import ReleaseStore
from dockyard.targets.checks import VerificationFailed

PATH = "/version"
_UNKNOWN = ("", "unknown", "none", "null")


def commit_answered(status: int, body: bytes) -> str | None:
    """The commit a `/version` answer names; None when the app does not answer it (any non-200, or no JSON)."""
    if status != 200:
        return None
    try:
        commit = json.loads(body).get("commit")
    except (ValueError, AttributeError):
        return None
    return None if commit is None or str(commit).strip().lower() in _UNKNOWN else str(commit).strip()


def cross_check(what: str, recorded: str | None, status: int, body: bytes) -> str | None:
    """The commit `what` answers on /version (None: it does not answer it, which is fine); refuses one that
    contradicts the commit its image records."""
    answered = commit_answered(status, body)
    if answered and recorded and not (answered.startswith(recorded) or recorded.startswith(answered)):
        raise VerificationFailed(f"{what} answers {PATH} with commit {answered}, but its image was built from "
                                 f"{recorded} (its org.opencontainers.image.revision label)",
                                 hint="the image and the code it runs disagree: rebuild it from one commit")
    return answered


def recorded_commits(store: ReleaseStore | None, version: int | None) -> Mapping[str, str]:
    """service -> the commit each image of release `version` records ({} when unknown)."""
    if store is None or version is None:
        return {}
    try:
        found = store.get(version)
    except DockyardError:
        return {}
    return found.release.commits() if found else {}


def wait_tcp(what: str, host: str, port: int, *, timeout: float, interval: float = 1.0) -> None:
    """A TCP health check: the port accepts a connection within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=3):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise VerificationFailed(f"{what} did not accept a TCP connection on {host}:{port} within "
                                         f"{timeout:.0f}s ({err})") from None
        time.sleep(interval)
