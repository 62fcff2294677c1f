"""What only the engine can tell the dashboard (a registry stack's or a stack-following environment's
`images` output, a branch stack's `url`, when each stack was last updated), read in the background.

Engine calls take a second or more each, so they never sit in a page's path: the page renders
from the stores at once and shows these when they arrive (every `interval` seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dockyard import naming
from dockyard.errors import DockyardError
from dockyard.release.context import Context

INTERVAL = 30.0


@dataclass(frozen=True)
class EngineSnapshot:
    generation: int = 0  # 0: not read yet
    read_at: datetime | None = None
    images: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # stack -> its `images` output
    urls: Mapping[str, str] = field(default_factory=dict)  # stack -> its `url` output
    errors: Mapping[str, str] = field(default_factory=dict)  # stack -> why it could not be read
    last_updates: Mapping[str, datetime] = field(default_factory=dict)
    stacks_error: str | None = None


def _message(err: Exception) -> str:
    return (err.message if isinstance(err, DockyardError) else f"{type(err).__name__}: {err}")[:300]


def _plain_images(value: Any) -> dict[str, str]:
    """Only service -> reference strings from an `images` output."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _plain_url(value: Any) -> str | None:
    """An http(s) URL without credentials in it, or None."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return None
    scheme, rest = value.split("://", 1)
    host, sep, path = rest.partition("/")
    return f"{scheme}://{host.rsplit('@', 1)[-1]}{sep}{path}"


def read(ctx: Context, generation: int, now: datetime) -> EngineSnapshot:
    """One pass over every stack whose state only the engine holds. Failures are kept per stack."""
    images: dict[str, dict[str, str]] = {}
    urls: dict[str, str] = {}
    errors: dict[str, str] = {}
    wanted = []
    for name in ctx.project.stack_names():
        try:
            env = ctx.project.environment(name)
        except DockyardError:
            continue  # the page shows the config error from the stack file itself
        if env.store_kind == "stack" or naming.is_branch_stack(name):
            wanted.append(name)
    for name in wanted:
        try:
            outputs = ctx.deployer.outputs(name)
        except Exception as err:  # noqa: BLE001 - one stack that cannot be read leaves the rest readable
            errors[name] = _message(err)
            continue
        images[name] = _plain_images(outputs.get("images"))
        url = _plain_url(outputs.get("url"))
        if url:
            urls[name] = url
    last_updates: dict[str, datetime] = {}
    stacks_error = None
    if any(naming.is_branch_stack(n) for n in wanted):
        try:
            last_updates = {s.name: s.last_update for s in ctx.deployer.stacks() if s.last_update is not None}
        except Exception as err:  # noqa: BLE001
            stacks_error = _message(err)
    return EngineSnapshot(generation=generation, read_at=now, images=images, urls=urls, errors=errors,
                          last_updates=last_updates, stacks_error=stacks_error)


class EngineReads:
    """The newest EngineSnapshot, refreshed by `refresh()` or by a background thread (`start()`)."""

    def __init__(self, ctx: Context, *, interval: float = INTERVAL) -> None:
        self.ctx, self.interval = ctx, interval
        self.snapshot = EngineSnapshot()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> EngineSnapshot:
        with self._lock:
            self.snapshot = read(self.ctx, self.snapshot.generation + 1, self.ctx.now())
            return self.snapshot

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=loop, name="dockyard-ui-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
