"""`dockyard:windows`: when an environment takes promotions. Allow and deny schedules (cron or RFC 5545
RRULE, each with a time zone and a duration); validated once, evaluated at a given instant. Pure.

Open at instant t when no deny window covers t and, if any allow window is configured, one covers t.
croniter expands cron expressions and python-dateutil's rrule the recurrence rules; both work on
wall-clock times in the window's zone, so a 09:00 start stays 09:00 across daylight-saving changes.
Durations are added in UTC: `8h` is eight real hours, even on the night the clocks change.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from infra.errors import ConfigError
from infra.release.insights.spans import EXPECTED as SPAN_EXPECTED
from infra.release.insights.spans import parse_span

WINDOW_KEYS = ("timezone", "allow", "deny")
ENTRY_KEYS = ("name", "cron", "rrule", "start", "duration", "timezone")
# An anchor for recurrence rules without `start`: a Monday at midnight, recent enough to expand quickly.
DEFAULT_START = datetime(2024, 1, 1)
HORIZON = timedelta(days=400)  # how far ahead "when does it open" looks
MAX_OCCURRENCES = 20000  # per window and question: a `* * * * *` window cannot run away
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")


@dataclass(frozen=True)
class Window:
    name: str
    kind: str  # "allow" or "deny"
    duration: timedelta
    timezone: str
    cron: str | None = None
    rrule: str | None = None
    start: datetime | None = None  # naive, in `timezone`: a one-off window, or where a recurrence begins

    def describe(self) -> str:
        what = (f"cron {self.cron!r}" if self.cron else f"rrule {self.rrule!r}" if self.rrule
                else f"once at {self.start:%Y-%m-%d %H:%M}")
        return f"{self.kind} {self.name}: {what} for {_span_text(self.duration)} ({self.timezone})"

    def occurrences(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) in UTC, ascending by start, of every occurrence that ends after `since` (UTC)."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.timezone)
        first = (since - self.duration).astimezone(zone)
        if self.cron:
            from croniter import croniter

            # croniter's next from `first` excludes `first` itself: step back a second to include it.
            schedule = croniter(self.cron, first - timedelta(seconds=1))
            starts: Iterator[datetime] = (schedule.get_next(datetime) for _ in itertools.count())
        elif self.rrule:
            from dateutil.rrule import rrulestr

            rule = rrulestr(self.rrule, dtstart=(self.start or DEFAULT_START).replace(tzinfo=zone))
            starts = rule.xafter(first, inc=True)  # type: ignore[attr-defined]
        else:
            starts = iter([self.start.replace(tzinfo=zone)] if self.start else [])
        for begin in starts:
            begin_utc = begin.astimezone(timezone.utc)
            end = begin_utc + self.duration
            if end > since:
                yield begin_utc, end


@dataclass(frozen=True)
class Windows:
    allow: tuple[Window, ...] = ()
    deny: tuple[Window, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"allow": [w.describe() for w in self.allow], "deny": [w.describe() for w in self.deny]}


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


def _span_text(span: timedelta) -> str:
    from infra.release.insights.spans import describe

    return describe(span)


# ----------------------------------------------------------------------------- evaluation


class _Cover:
    """One window's occurrences, expanded lazily up to the question's horizon, for "does it cover t"."""

    def __init__(self, window: Window, since: datetime, until: datetime) -> None:
        self.window = window
        self.until = until
        self._source = itertools.islice(window.occurrences(since), MAX_OCCURRENCES)
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


# ----------------------------------------------------------------------------- validation


def _fail(path: str, value: Any, expected: str) -> ConfigError:
    shown = repr(value) if isinstance(value, str) else value
    return ConfigError(f"dockyard:{path}: got {shown}; expected {expected}")


def _zone(path: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value:
        raise _fail(path, value, "an IANA time zone such as UTC or Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(path, value, "an IANA time zone such as UTC or Europe/Paris") from None
    return value


def _entry(path: str, raw: Any, kind: str, default_zone: str, names: set[str]) -> Window:
    if not isinstance(raw, Mapping):
        raise _fail(path, raw, "an object of name, cron or rrule (or start alone), duration, timezone")
    for key in raw:
        if key not in ENTRY_KEYS:
            raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(ENTRY_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{path}.name", name, "a name of letters, digits, spaces, '.', '_' or '-' (1-63)")
    if name in names:
        raise _fail(f"{path}.name", name, "a name no other window of this environment has")
    names.add(name)
    zone = _zone(f"{path}.timezone", raw["timezone"]) if "timezone" in raw else default_zone
    duration = parse_span(raw.get("duration"))
    if duration is None:
        raise _fail(f"{path}.duration", raw.get("duration"), SPAN_EXPECTED)
    start = None
    if "start" in raw:
        try:
            start = datetime.fromisoformat(str(raw["start"]))
        except ValueError:
            start = None
        if start is None or start.tzinfo is not None:
            raise _fail(f"{path}.start", raw["start"], f"a local date-time like 2026-12-20T18:00 (in {zone})")
    cron, rrule = raw.get("cron"), raw.get("rrule")
    if cron is not None and rrule is not None:
        raise ConfigError(f"dockyard:{path}: has both cron and rrule; expected one of them")
    if cron is not None:
        from croniter import croniter

        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise _fail(f"{path}.cron", cron, "a five-field cron expression such as '0 18 * * 5' (minute hour "
                                              "day-of-month month day-of-week)")
    elif rrule is not None:
        rrule = _rrule(f"{path}.rrule", rrule)
    elif start is None:
        raise ConfigError(f"dockyard:{path}: needs cron, rrule, or start (a one-off window)")
    return Window(name=name, kind=kind, duration=duration, timezone=zone, cron=cron, rrule=rrule, start=start)


def _rrule(path: str, value: Any) -> str:
    from dateutil.rrule import rrulestr

    expected = "an RFC 5545 recurrence rule such as 'FREQ=WEEKLY;BYDAY=FR;BYHOUR=18' (DTSTART goes in start)"
    if not isinstance(value, str):
        raise _fail(path, value, expected)
    text = value.strip()
    text = text[len("RRULE:"):] if text.upper().startswith("RRULE:") else text
    if "DTSTART" in text.upper() or "\n" in text or not text.upper().startswith("FREQ="):
        raise _fail(path, value, expected)
    try:
        rrulestr(text, dtstart=DEFAULT_START)
    except (ValueError, TypeError) as err:
        raise _fail(path, value, f"{expected} ({err})") from None
    return text


def parse_windows(value: Any) -> Windows | None:
    """`dockyard:windows` (JSON-decoded), or a ConfigError naming the key path. None: not set."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail("windows", value, "an object of timezone, allow, deny (set it with pulumi config set --path)")
    for key in value:
        if key not in WINDOW_KEYS:
            raise ConfigError(f"dockyard:windows.{key} is not a setting here; known keys: {', '.join(WINDOW_KEYS)}")
    zone = _zone("windows.timezone", value["timezone"]) if "timezone" in value else "UTC"
    names: set[str] = set()
    lists: dict[str, tuple[Window, ...]] = {}
    for kind in ("allow", "deny"):
        raw = value.get(kind) or []
        if not isinstance(raw, list):
            raise _fail(f"windows.{kind}", raw, "a list of windows")
        lists[kind] = tuple(_entry(f"windows.{kind}[{i}]", e, kind, zone, names) for i, e in enumerate(raw))
    return Windows(allow=lists["allow"], deny=lists["deny"])
