"""Durations as config and flags spell them: `30m`, `8h`, `2d12h`, `1w`, or RFC 5545 / ISO 8601 `PT8H`. Pure."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from dockyard.errors import ConfigError

_SHORT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
EXPECTED = "a duration like 30m, 8h, 2d12h, 1w or PT8H"


def parse_span(text: object) -> timedelta | None:
    """The duration `text` spells, or None when it spells none (or nothing: zero)."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    short = _SHORT.match(value)
    if short and any(short.groups()):
        w, d, h, m = (int(g or 0) for g in short.groups())
        span = timedelta(weeks=w, days=d, hours=h, minutes=m)
        return span if span > timedelta(0) else None
    iso = _ISO.match(value.upper())
    if iso and any(iso.groups()):
        w, d, h, m, s = (int(g or 0) for g in iso.groups())
        span = timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)
        return span if span > timedelta(0) else None
    return None


def describe(span: timedelta) -> str:
    """`2d 3h`, `45m`, `30s`: the two largest units, for messages."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def duration_setting(path: str, value: Any) -> timedelta | None:
    """A `dockyard:` duration key (e.g. `soak`), or a ConfigError naming it. None: not set."""
    if value is None:
        return None
    span = parse_span(value)
    if span is None:
        shown = repr(value) if isinstance(value, str) else value
        raise ConfigError(f"dockyard:{path}: got {shown}; expected {EXPECTED}")
    return span
