"""Freeze windows at a given instant: open or closed, which window decides it, and until when.

Open at instant t when no deny window covers t and, if any allow window is configured, one covers t.
croniter expands cron expressions and python-dateutil's rrule the recurrence rules; both work on
wall-clock times in the window's zone, so a 09:00 start stays 09:00 across daylight-saving changes.
Durations are added in UTC: `8h` is eight real hours, even on the night the clocks change.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dockyard.config.windows import DEFAULT_START, Window, Windows

HORIZON = timedelta(days=400)  # how far ahead "when does it open" looks
MAX_OCCURRENCES = 20000  # per window and question: a `* * * * *` window cannot run away


def occurrences(window: Window, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) in UTC, ascending by start, of every occurrence that ends after `since` (UTC)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(window.timezone)
    first = (since - window.duration).astimezone(zone)
    if window.cron:
        from croniter import croniter

        # croniter's next from `first` excludes `first` itself: step back a second to include it.
        schedule = croniter(window.cron, first - timedelta(seconds=1))
        starts: Iterator[datetime] = (schedule.get_next(datetime) for _ in itertools.count())
    elif window.rrule:
        from dateutil.rrule import rrulestr

        rule = rrulestr(window.rrule, dtstart=(window.start or DEFAULT_START).replace(tzinfo=zone))
        starts = rule.xafter(first, inc=True)  # type: ignore[attr-defined]
    else:
        starts = iter([window.start.replace(tzinfo=zone)] if window.start else [])
    for begin in starts:
        begin_utc = begin.astimezone(timezone.utc)
        end = begin_utc + window.duration
        if end > since:
            yield begin_utc, end


@dataclass(frozen=True)
class WindowState:
    """Whether promotions may happen now, which window decides it, and until when."""

    open: bool
    window: str | None = None  # closed: the deny window (or the allow windows) that keeps it closed
    until: datetime | None = None  # closed: when it opens (None: not within the horizon); open: when it closes
    configured: bool = True

    def describe(self) -> str:
        if not self.configured:
            return "open (no windows)"
        when = _when(self.until)
        if self.open:
            return f"open until {when}" if self.until else "open"
        return f"closed by {self.window}; opens {when}" if self.until else f"closed by {self.window}; not opening " \
                                                                            f"within {HORIZON.days} days"

    def to_json(self) -> dict[str, Any]:
        return {"open": self.open, "window": self.window, "until": _iso(self.until), "configured": self.configured}


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# ----------------------------------------------------------------------------- evaluation


class _Cover:
    """One window's occurrences, expanded lazily up to the question's horizon, for "does it cover t"."""

    def __init__(self, window: Window, since: datetime, until: datetime) -> None:
        self.window = window
        self.until = until
        self._source = itertools.islice(occurrences(window, since), MAX_OCCURRENCES)
        self._done = False
        self.limit: datetime | None = None  # past this, occurrences were not expanded (MAX_OCCURRENCES)
        self.spans: list[tuple[datetime, datetime]] = []
        self.starts: list[datetime] = []

    def _pull(self) -> bool:
        if self._done:
            return False
        span = next(self._source, None)
        if span is None or span[0] > self.until:
            self._done = True
            if span is None and len(self.spans) == MAX_OCCURRENCES:
                self.limit = self.spans[-1][0]
            return False
        self.spans.append(span)
        self.starts.append(span[0])
        return True

    def covering(self, moment: datetime) -> tuple[datetime, datetime] | None:
        while (not self.starts or self.starts[-1] <= moment) and self._pull():
            pass
        # Every occurrence of a window lasts as long: the latest start at or before `moment` ends last.
        i = bisect.bisect_right(self.starts, moment) - 1
        if i >= 0 and self.spans[i][1] > moment:
            return self.spans[i]
        return None

    def _walk(self, part: int) -> Iterator[datetime]:
        i = 0
        while i < len(self.spans) or self._pull():
            yield self.spans[i][part]
            i += 1

    def boundaries(self) -> Iterator[datetime]:
        # Starts ascend, and so do ends (equal durations): merging the two keeps time order.
        return heapq.merge(self._walk(0), self._walk(1))


def state(windows: Windows | None, now: datetime) -> WindowState:
    """Open or closed at `now` (aware), which window says so, and when that changes."""
    if windows is None or not (windows.allow or windows.deny):
        return WindowState(open=True, configured=False)
    now = now.astimezone(timezone.utc)
    horizon = now + HORIZON
    allow = [_Cover(w, now, horizon) for w in windows.allow]
    deny = [_Cover(w, now, horizon) for w in windows.deny]

    def verdict(moment: datetime) -> tuple[bool, str | None]:
        for cover in deny:
            if cover.covering(moment):
                return False, cover.window.name
        if allow and not any(c.covering(moment) for c in allow):
            return False, "allow windows (" + ", ".join(c.window.name for c in allow) + ")"
        return True, None

    is_open, culprit = verdict(now)
    # State changes only where some occurrence starts or ends: test those instants, in order.
    edges = heapq.merge(*(c.boundaries() for c in allow + deny))
    for edge in edges:
        if edge <= now:
            continue
        if any(c.limit is not None and edge >= c.limit for c in allow + deny):
            break  # beyond what was expanded: not known within the horizon
        if verdict(edge)[0] != is_open:
            return WindowState(open=is_open, window=culprit, until=edge)
    return WindowState(open=is_open, window=culprit, until=None)


