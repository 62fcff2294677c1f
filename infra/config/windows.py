"""`dockyard:windows`: when an environment takes promotions: allow and deny schedules (cron or RFC 5545
RRULE, each with a time zone and a duration). Pure: validated here, evaluated by the command
(infra/release/insights/windows.py).

croniter checks cron expressions and python-dateutil recurrence rules; both are evaluated on
wall-clock times in the window's zone, and durations are real elapsed time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dockyard.config.spans import EXPECTED as SPAN_EXPECTED
from dockyard.config.spans import describe, parse_span
from dockyard.errors import ConfigError
from dockyard.validation import fail, known_keys

WINDOW_KEYS = ("timezone", "allow", "deny")
ENTRY_KEYS = ("name", "cron", "rrule", "start", "duration", "timezone")
# An anchor for recurrence rules without `start`: a Monday at midnight, recent enough to expand quickly.
DEFAULT_START = datetime(2024, 1, 1)
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
        return f"{self.kind} {self.name}: {what} for {describe(self.duration)} ({self.timezone})"


@dataclass(frozen=True)
class Windows:
    allow: tuple[Window, ...] = ()
    deny: tuple[Window, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"allow": [w.describe() for w in self.allow], "deny": [w.describe() for w in self.deny]}


def _zone(path: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value:
        raise fail(path, value, "an IANA time zone such as UTC or Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(path, value, "an IANA time zone such as UTC or Europe/Paris") from None
    return value


def _entry(path: str, raw: Any, kind: str, default_zone: str, names: set[str]) -> Window:
    if not isinstance(raw, Mapping):
        raise fail(path, raw, "an object of name, cron or rrule (or start alone), duration, timezone")
    known_keys(f"{path}", raw, ENTRY_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(f"{path}.name", name, "a name of letters, digits, spaces, '.', '_' or '-' (1-63)")
    if name in names:
        raise fail(f"{path}.name", name, "a name no other window of this environment has")
    names.add(name)
    zone = _zone(f"{path}.timezone", raw["timezone"]) if "timezone" in raw else default_zone
    duration = parse_span(raw.get("duration"))
    if duration is None:
        raise fail(f"{path}.duration", raw.get("duration"), SPAN_EXPECTED)
    start = None
    if "start" in raw:
        try:
            start = datetime.fromisoformat(str(raw["start"]))
        except ValueError:
            start = None
        if start is None or start.tzinfo is not None:
            raise fail(f"{path}.start", raw["start"], f"a local date-time like 2026-12-20T18:00 (in {zone})")
    cron, rrule = raw.get("cron"), raw.get("rrule")
    if cron is not None and rrule is not None:
        raise ConfigError(f"dockyard:{path}: has both cron and rrule; expected one of them")
    if cron is not None:
        from croniter import croniter

        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise fail(f"{path}.cron", cron, "a five-field cron expression such as '0 18 * * 5' (minute hour "
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
        raise fail(path, value, expected)
    text = value.strip()
    text = text[len("RRULE:"):] if text.upper().startswith("RRULE:") else text
    if "DTSTART" in text.upper() or "\n" in text or not text.upper().startswith("FREQ="):
        raise fail(path, value, expected)
    try:
        rrulestr(text, dtstart=DEFAULT_START)
    except (ValueError, TypeError) as err:
        raise fail(path, value, f"{expected} ({err})") from None
    return text


def parse_windows(value: Any) -> Windows | None:
    """`dockyard:windows` (JSON-decoded), or a ConfigError naming the key path. None: not set."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fail("windows", value, "an object of timezone, allow, deny (set it with pulumi config set --path)")
    known_keys("windows", value, WINDOW_KEYS)
    zone = _zone("windows.timezone", value["timezone"]) if "timezone" in value else "UTC"
    names: set[str] = set()
    lists: dict[str, tuple[Window, ...]] = {}
    for kind in ("allow", "deny"):
        raw = value.get(kind) or []
        if not isinstance(raw, list):
            raise fail(f"windows.{kind}", raw, "a list of windows")
        lists[kind] = tuple(_entry(f"windows.{kind}[{i}]", e, kind, zone, names) for i, e in enumerate(raw))
    return Windows(allow=lists["allow"], deny=lists["deny"])
