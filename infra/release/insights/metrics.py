"""The four DORA delivery figures of one environment, from its release history alone (any store). Pure.

* deployment frequency: promotions written in the period (rollbacks are counted apart), per day and week;
* lead time for changes: per service a promotion changed, from the commit time of the oldest commit it
  brings (its recorded changelog) to the release in the environment; the median, with how many changes
  had a commit time to measure from;
* change failure rate: promotions that a later release undid (failed verification and rolled back by
  dockyard, rolled back by a person, aborted, reverted by the orchestrator) over all promotions;
* time to restore: from a failed release to the next release that was not itself undone; the median.

A release's time is its `at`, when it was written: `promote` deploys and verifies it in the same command,
so that is when it became known-good, give or take the deploy.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dockyard.config.spans import describe
from dockyard.release.stores.base import StoredRelease


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Figure:
    """A median duration and the number of samples behind it."""

    samples: int
    median: timedelta | None

    def to_json(self) -> dict[str, Any]:
        return {"samples": self.samples,
                "medianSeconds": int(self.median.total_seconds()) if self.median is not None else None,
                "median": describe(self.median) if self.median is not None else None}

    def text(self) -> str:
        return f"{describe(self.median)} (median of {self.samples})" if self.median is not None else "- (no samples)"


def _median(spans: Sequence[timedelta]) -> Figure:
    if not spans:
        return Figure(0, None)
    return Figure(len(spans), timedelta(seconds=statistics.median(s.total_seconds() for s in spans)))


@dataclass
class EnvironmentMetrics:
    env: str
    start: datetime
    end: datetime
    deployments: int = 0
    rollbacks: int = 0  # releases that undid another (not counted as deployments)
    failed: int = 0
    causes: dict[str, int] = field(default_factory=dict)  # rollback cause -> failed promotions
    lead_time: Figure = Figure(0, None)
    lead_time_unmeasured: int = 0  # changes whose commit time is not recorded
    restore: Figure = Figure(0, None)
    unrestored: int = 0  # failed releases not followed by a good one (yet)

    @property
    def days(self) -> float:
        return max((self.end - self.start).total_seconds() / 86400, 1 / 1440)

    @property
    def per_day(self) -> float:
        return self.deployments / self.days

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.deployments if self.deployments else None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": _iso(self.start), "until": _iso(self.end), "days": round(self.days, 2),
            "deploymentFrequency": {"deployments": self.deployments, "perDay": round(self.per_day, 3),
                                    "perWeek": round(self.per_day * 7, 2), "rollbacks": self.rollbacks},
            "leadTime": {**self.lead_time.to_json(), "unmeasured": self.lead_time_unmeasured},
            "changeFailureRate": {"failed": self.failed, "deployments": self.deployments,
                                  "rate": round(self.failure_rate, 4) if self.failure_rate is not None else None,
                                  "causes": dict(sorted(self.causes.items()))},
            "timeToRestore": {**self.restore.to_json(), "unrestored": self.unrestored},
        }

    def lines(self) -> list[str]:
        rate = f"{self.failure_rate:.0%}" if self.failure_rate is not None else "-"
        causes = ", ".join(f"{n} {c}" for c, n in sorted(self.causes.items()))
        return [
            f"{self.env} ({self.days:.0f} days to {self.end:%Y-%m-%d}):",
            f"  deployment frequency   {self.per_day * 7:.1f}/week ({self.deployments} promotions, "
            f"{self.rollbacks} rollbacks)",
            f"  lead time for changes  {self.lead_time.text()}"
            + (f"; {self.lead_time_unmeasured} change(s) without a commit time" if self.lead_time_unmeasured else ""),
            f"  change failure rate    {rate} ({self.failed} of {self.deployments}{f': {causes}' if causes else ''})",
            f"  time to restore        {self.restore.text()}"
            + (f"; {self.unrestored} not restored yet" if self.unrestored else ""),
        ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compute(env: str, releases: Sequence[StoredRelease], *, now: datetime, since: timedelta) -> EnvironmentMetrics:
    """The figures for releases written in (now - since, now]; `releases` in any order."""
    ordered = sorted(releases, key=lambda r: r.version)
    start = now - since
    result = EnvironmentMetrics(env=env, start=start, end=now)
    undone: dict[int, tuple[str, int]] = {}  # version -> (cause, the version that undid it)
    for r in ordered:
        if r.release.rollback is not None:
            undone.setdefault(r.release.rollback.of, (r.release.rollback.cause, r.version))
    causes: Counter[str] = Counter()
    leads: list[timedelta] = []
    restores: list[timedelta] = []
    for i, r in enumerate(ordered):
        at = parse_time(r.release.at)
        if at is None or not start < at <= now:
            continue
        if r.release.rollback is not None:
            result.rollbacks += 1
            continue
        result.deployments += 1
        if r.version in undone:
            causes[undone[r.version][0]] += 1
            good = next((later for later in ordered[i + 1:] if later.version not in undone), None)
            back = parse_time(good.release.at) if good else None
            if back is None:
                result.unrestored += 1
            else:
                restores.append(back - at)
            continue
        for change in r.release.changelog.values():
            committed = parse_time(change.oldest or change.newest)
            if committed is None:
                result.lead_time_unmeasured += 1
            else:
                leads.append(max(at - committed, timedelta(0)))
    result.failed = sum(causes.values())
    result.causes = dict(causes)
    result.lead_time = _median(leads)
    result.restore = _median(restores)
    return result
