"""The metrics page's data: per environment the figures `dockyard metrics` gives (the same function,
`dockyard.release.insights.metrics.compute`, over the same period), and for the chart the same count week
by week (the week's promotions and those a later release undid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from dockyard.release.insights.metrics import compute
from dockyard.release.stores.base import StoredRelease
from dockyard.release.ui.model import MetricsView, WeekView

WEEKS = 12  # the chart's weeks, the newest ending now


def metrics_view(env: str, releases: Sequence[StoredRelease], *, now: datetime, since: timedelta,
                 weeks: int = WEEKS) -> MetricsView:
    ordered = sorted(releases, key=lambda r: r.version)  # each compute sorts again: linear on a sorted list
    figures = compute(env, ordered, now=now, since=since)
    week_views = []
    for i in range(weeks):
        end = now - timedelta(weeks=weeks - 1 - i)
        week = compute(env, ordered, now=end, since=timedelta(weeks=1))
        week_views.append(WeekView(start=week.start.date().isoformat(), deployments=week.deployments,
                                   failures=week.failed))
    return MetricsView(env=env, figures=figures, weeks=tuple(week_views))


def delivery_metrics(histories: Mapping[str, Sequence[StoredRelease]], *, now: datetime,
                     since: timedelta) -> list[MetricsView]:
    return [metrics_view(env, releases, now=now, since=since) for env, releases in histories.items()]
