"""Delivery metrics per environment from its release history: deployment frequency, lead time,
change failure rate and time to restore.

* a **deployment** is a release that is not a rollback (a promote, or a branch's own release);
* a deployment **failed** when a later release of the same environment rolled it back
  (any cause: automatic after a failed verification, aborted, reverted by the orchestrator, or by hand);
* **time to restore** is from the failed release to the first release that rolled it back;
* **lead time** is from the first time any environment of the project released an image to the
  time this environment did: the time a change spends travelling along the pipeline. Releases
  record no commit time, so the time before the first release is not counted.

Releases without a readable time (`at`) are left out of every figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

from infra.release.stores.base import StoredRelease
from infra.release.ui.model import MetricsView, WeekView

WEEKS = 12


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def first_seen(histories: Mapping[str, Sequence[StoredRelease]]) -> dict[str, datetime]:
    """Each pinned image -> the earliest time any environment released it."""
    seen: dict[str, datetime] = {}
    for releases in histories.values():
        for stored in releases:
            at = parse_time(stored.release.at)
            if at is None:
                continue
            for image in stored.release.image_strings().values():
                if image not in seen or at < seen[image]:
                    seen[image] = at
    return seen


def environment_metrics(env: str, releases: Sequence[StoredRelease], *, now: datetime,
                        seen: Mapping[str, datetime], weeks: int = WEEKS) -> MetricsView:
    """`releases` newest first (as stores return them)."""
    oldest_first = sorted(releases, key=lambda r: r.version)
    restored_at: dict[int, datetime] = {}
    for stored in oldest_first:
        rollback, at = stored.release.rollback, parse_time(stored.release.at)
        if rollback is not None and at is not None and rollback.of not in restored_at:
            restored_at[rollback.of] = at
    deployments: list[tuple[datetime, bool]] = []
    leads: list[float] = []
    restores: list[float] = []
    previous: dict[str, str] = {}
    for stored in oldest_first:
        images = stored.release.image_strings()
        at = parse_time(stored.release.at)
        if stored.release.rollback is None and at is not None:
            failed = stored.version in restored_at
            deployments.append((at, failed))
            if failed:
                restores.append(max(0.0, (restored_at[stored.version] - at).total_seconds()))
            for service, image in images.items():
                if previous.get(service) != image and image in seen:
                    leads.append(max(0.0, (at - seen[image]).total_seconds()))
        previous = images
    window_start = now - timedelta(weeks=weeks)
    week_views = []
    for i in range(weeks):
        start = window_start + timedelta(weeks=i)
        end = start + timedelta(weeks=1)
        inside = [failed for at, failed in deployments if start <= at < end or (i == weeks - 1 and at == end)]
        week_views.append(WeekView(start=start.date().isoformat(), deployments=len(inside),
                                   failures=sum(inside)))
    recent = sum(w.deployments for w in week_views)
    failures = sum(1 for _, failed in deployments if failed)
    return MetricsView(env=env, deployments=len(deployments), failures=failures, per_week=recent / weeks,
                       lead_time=statistics.median(leads) if leads else None,
                       change_failure_rate=failures / len(deployments) if deployments else None,
                       time_to_restore=statistics.median(restores) if restores else None,
                       weeks=tuple(week_views))


def delivery_metrics(histories: Mapping[str, Sequence[StoredRelease]], *, now: datetime,
                     weeks: int = WEEKS) -> list[MetricsView]:
    """Every environment's figures; lead times look across all the histories given."""
    seen = first_seen(histories)
    return [environment_metrics(env, releases, now=now, seen=seen, weeks=weeks)
            for env, releases in histories.items()]


def duration_text(seconds: float | None) -> str:
    """A short human duration: 45s, 12m, 3h 10m, 2d 4h."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes}m"
    if seconds < 86400:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{days}d {hours % 24}h" if hours % 24 else f"{days}d"
