"""The current Dashboard, rebuilt only when something it shows has changed.

Open pages ask for the version every couple of seconds; the version is cheap (current release,
labels and hold per store; it also moves when a freeze window shown opens or closes), the Dashboard
(whole histories, metrics) is rebuilt only when the version moves. Many pages share one answer per
`min_interval`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from dockyard.release.context import Context
from dockyard.release.insights.report import DEFAULT_SINCE
from dockyard.release.ui import gather
from dockyard.release.ui.changelogs import Changelogs
from dockyard.release.ui.engine_reads import EngineReads
from dockyard.release.ui.model import Dashboard


class Dashboards:
    def __init__(self, ctx: Context, engine: EngineReads, *, idle_for: timedelta, idle_text: str,
                 since_text: str = DEFAULT_SINCE, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx, self.engine = ctx, engine
        self.idle_for, self.idle_text, self.since_text = idle_for, idle_text, since_text
        self.min_interval, self.clock = min_interval, clock
        self._lock = threading.Lock()
        self._version: tuple[float, str] | None = None
        self._built: Dashboard | None = None
        self._changelogs = Changelogs()  # what a promote would bring, kept across builds
        self._window_flips = 0  # freeze-window openings and closings passed while serving
        self._last_flip: datetime | None = None

    def version(self) -> str:
        with self._lock:
            return self._current_version()

    def _current_version(self) -> str:
        now = self.clock()
        if self._version is None or now - self._version[0] >= self.min_interval:
            self._version = (now, gather.fingerprint(self.ctx, self.engine.snapshot) + self._windows_moved())
        return self._version[1]

    def _windows_moved(self) -> str:
        """A freeze window opens or closes with time alone, no store changing: once the first such instant the
        built page shows has passed, the version moves (the page built then shows the next instant)."""
        shown = self._built.environments if self._built is not None else ()
        first = min((e.window.until for e in shown if e.window is not None and e.window.until), default=None)
        if first is not None and first <= self.ctx.now() and first != self._last_flip:
            self._window_flips, self._last_flip = self._window_flips + 1, first
        return f"+w{self._window_flips}" if self._window_flips else ""

    def current(self) -> Dashboard:
        with self._lock:
            version = self._current_version()
            if self._built is None or self._built.version != version:
                self._built = gather.build(self.ctx, self.engine.snapshot, version=version, idle_for=self.idle_for,
                                           idle_text=self.idle_text, since_text=self.since_text,
                                           changelogs=self._changelogs)
            return self._built
