"""`promote ENV --from SRC --auto`: the soak gate a scheduled job asks before promoting.

It promotes only when SRC's newest release is its known-good one and has run verified for ENV's
`dockyard:soak`, ENV is not held (an automatic rollback holds it, so a rollback is never undone by the
next scheduled run), ENV's freeze windows are open, and the release differs from what ENV has.
Otherwise it says which condition is not met, and the command exits 0: waiting is not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.config.spans import describe
from infra.config.windows import Windows
from infra.release.insights import windows as freeze
from infra.release.insights.metrics import parse_time
from infra.release.stores.base import KNOWN_GOOD, ReleaseStore

# Why an --auto run did not promote; the JSON document's `waiting` field.
HELD, WINDOW, UNVERIFIED, SOAKING, SAME, SOURCE_HELD = ("held", "window", "unverified", "soaking", "same",
                                                        "source-held")


@dataclass(frozen=True)
class Gate:
    """The gate's answer: promote (`waiting` None) or which condition holds it back, in one line."""

    env: str
    source: str
    waiting: str | None
    message: str
    candidate: int | None = None  # SRC's known-good version
    eligible_at: datetime | None = None  # soaking: when it will have soaked

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "from": self.source, "promoted": False, "waiting": self.waiting,
                "message": self.message, "candidate": self.candidate,
                "eligibleAt": self.eligible_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.eligible_at else None}

    def lines(self) -> list[str]:
        return [f"Not promoting {self.source} -> {self.env}: {self.message}"]


def decide(*, env: str, source: str, soak: timedelta, target: ReleaseStore, source_store: ReleaseStore,
           windows: Windows | None, services: set[str], now: datetime) -> Gate:
    """Check every condition in order; the first unmet one is the answer."""
    hold = target.hold()
    if hold is not None:
        return Gate(env, source, HELD, f"{env} is held since {hold.at} by {hold.by}: {hold.reason or 'rollback'} "
                                       f"(lift it with a promote --release-hold once the cause is fixed)")
    window = freeze.state(windows, now)
    if not window.open:
        return Gate(env, source, WINDOW, f"{env}'s window is {window.describe()}")
    if source_store.hold() is not None:
        return Gate(env, source, SOURCE_HELD, f"{source} is held (rolled back); its release is no candidate")
    labels = source_store.labels()
    good = labels.get(KNOWN_GOOD)
    newest = source_store.current()
    if good is None or newest is None:
        return Gate(env, source, UNVERIFIED, f"{source} has no known-good release yet")
    if newest.version != good:
        return Gate(env, source, UNVERIFIED, f"{source}'s newest release v{newest.version} has not verified "
                                             f"(known-good is v{good})", candidate=good)
    since = parse_time(newest.release.at)
    if since is None:
        return Gate(env, source, UNVERIFIED, f"{source}:v{good} records no time; cannot tell how long it ran",
                    candidate=good)
    ran = now - since
    if ran < soak:
        return Gate(env, source, SOAKING, f"{source}:v{good} has run verified for {describe(ran)} of "
                                          f"{describe(soak)}; eligible at {(since + soak):%Y-%m-%d %H:%M} UTC",
                    candidate=good, eligible_at=since + soak)
    current = target.current()
    offered = {s: r for s, r in newest.release.image_strings().items() if s in services}
    have = current.release.image_strings() if current else {}
    if all(have.get(s) == r for s, r in offered.items()):
        return Gate(env, source, SAME, f"{env} already runs what {source}:v{good} has", candidate=good)
    return Gate(env, source, None, f"{source}:v{good} has soaked {describe(ran)} (>= {describe(soak)})",
                candidate=good)
