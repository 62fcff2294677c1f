"""Freeze windows: validation in one line per key path, and open/closed at known instants (time zones, DST)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockyard.errors import ConfigError
from dockyard.config.windows import parse_windows
from dockyard.release.insights.windows import state

UTC = timezone.utc
# Paris: UTC+1 in winter, UTC+2 from the last Sunday of March (2026-03-29).
WEEK = {"timezone": "Europe/Paris",
        "allow": [{"name": "office-hours", "cron": "0 9 * * 1-5", "duration": "9h"}],
        "deny": [{"name": "friday-freeze", "cron": "0 16 * * 5", "duration": "65h"},
                 {"name": "year-end", "rrule": "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20", "duration": "14d"}]}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_inside_an_allow_window_until_the_freeze_starts():
    s = state(parse_windows(WEEK), at(2026, 3, 20, 12))  # Friday 13:00 in Paris
    assert s.open and s.until == at(2026, 3, 20, 15)  # 16:00 Paris
    assert s.describe() == "open until 2026-03-20 15:00 UTC"


def test_closed_by_a_deny_window_names_it_and_when_it_opens():
    s = state(parse_windows(WEEK), at(2026, 3, 21, 10))  # Saturday
    assert not s.open and s.window == "friday-freeze"
    # Friday 16:00 + 65 h is Monday 09:00 in Paris, which is when office hours begin anyway; the clocks
    # changed on the Sunday after, so this Monday is still UTC+1.
    assert s.until == at(2026, 3, 23, 8)


def test_outside_every_allow_window_is_closed_until_the_next_one():
    s = state(parse_windows(WEEK), at(2026, 3, 24, 19))  # Tuesday 20:00 in Paris
    assert not s.open and s.window == "allow windows (office-hours)"
    assert s.until == at(2026, 3, 25, 8)  # Wednesday 09:00, winter time: UTC+1
    after = state(parse_windows(WEEK), at(2026, 3, 31, 18))  # Tuesday 20:00, summer time
    assert after.until == at(2026, 4, 1, 7)  # still 09:00 on the wall clock: UTC+2


def test_a_yearly_rrule_freeze_spans_the_new_year():
    s = state(parse_windows(WEEK), at(2026, 12, 24, 12))
    assert not s.open and s.window == "year-end"
    # 14 days from 20 December 00:00 ends on Sunday 3 January; Monday 4 January 09:00 Paris is the first opening.
    assert s.until == at(2027, 1, 4, 8)


def test_a_one_off_window_and_no_windows():
    once = parse_windows({"deny": [{"name": "migration", "start": "2026-06-01T22:00", "duration": "PT4H"}]})
    assert not state(once, at(2026, 6, 2, 1)).open
    assert state(once, at(2026, 6, 2, 2)).open and state(once, at(2026, 6, 2, 2)).until is None
    assert state(None, at(2026, 6, 2, 2)).describe() == "open (no windows)"


def test_a_window_that_never_opens_says_so_without_running_away():
    always = parse_windows({"deny": [{"name": "always", "cron": "* * * * *", "duration": "1m"}]})
    s = state(always, at(2026, 1, 1))
    assert not s.open and s.until is None and "not opening within" in s.describe()


@pytest.mark.parametrize("value, message", [
    ({"deny": [{"name": "x", "cron": "61 * * * *", "duration": "1h"}]},
     "dockyard:windows.deny[0].cron: got '61 * * * *'; expected a five-field cron expression"),
    ({"allow": [{"name": "x", "rrule": "FREQ=SOMETIMES", "duration": "1h"}]},
     "dockyard:windows.allow[0].rrule: got 'FREQ=SOMETIMES'; expected an RFC 5545 recurrence rule"),
    ({"deny": [{"name": "x", "cron": "0 * * * *", "duration": "soon"}]},
     "dockyard:windows.deny[0].duration: got 'soon'; expected a duration like"),
    ({"timezone": "Mars/Olympus"}, "dockyard:windows.timezone: got 'Mars/Olympus'; expected an IANA time zone"),
    ({"deny": [{"name": "x", "cron": "0 * * * *", "duration": "1h", "timezone": "Nowhere"}]},
     "dockyard:windows.deny[0].timezone: got 'Nowhere'"),
    ({"deny": [{"name": "x", "cron": "0 * * * *", "rrule": "FREQ=DAILY", "duration": "1h"}]},
     "dockyard:windows.deny[0]: has both cron and rrule"),
    ({"deny": [{"name": "x", "duration": "1h"}]}, "dockyard:windows.deny[0]: needs cron, rrule, or start"),
    ({"deny": [{"name": "a", "cron": "0 * * * *", "duration": "1h"}, {"name": "a", "cron": "0 * * * *",
                                                                      "duration": "1h"}]},
     "dockyard:windows.deny[1].name: got 'a'; expected a name no other window"),
    ({"freeze": []}, "dockyard:windows.freeze is not a setting here; known keys: timezone, allow, deny"),
    ({"deny": [{"name": "x", "rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "duration": "1h"}]},
     "(DTSTART goes in start)"),
])
def test_bad_windows_fail_in_one_line_naming_the_key(value, message):
    with pytest.raises(ConfigError) as caught:
        parse_windows(value)
    assert message in caught.value.message and "\n" not in caught.value.message


def test_durations_are_real_hours_across_a_clock_change():
    # 8 h from Saturday 28 March 22:00 Paris (UTC+1) ends at 06:00 UTC, 08:00 summer time, not 06:00 local.
    w = parse_windows({"timezone": "Europe/Paris",
                       "deny": [{"name": "night", "start": "2026-03-28T22:00", "duration": "8h"}]})
    assert state(w, at(2026, 3, 28, 22)).until == at(2026, 3, 29, 5)
    assert state(w, at(2026, 3, 29, 5) + timedelta(seconds=1)).open
