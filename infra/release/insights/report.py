"""`dockyard metrics`: the four DORA figures of each environment, read from its release store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dockyard.config.spans import parse_span
from dockyard.errors import BadInput
from dockyard.release.insights.metrics import EnvironmentMetrics, compute

DEFAULT_SINCE = "30d"  # `dockyard metrics` and the dashboard's metrics page: the same period by default


@dataclass
class MetricsResult:
    since: str
    environments: list[EnvironmentMetrics]

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "environments": {m.env: m.to_json() for m in self.environments}}

    def lines(self) -> list[str]:
        lines: list[str] = []
        for m in self.environments:
            lines += m.lines()
        return lines or ["No environment with a release store."]


def period(since: str) -> timedelta:
    """`--since` as a span; bad input names the flag."""
    span = parse_span(since)
    if span is None:
        raise BadInput(f"--since {since!r}: expected a period like 30d, 12w or 90d")
    return span


def metrics(ctx: Any, envs: list[str], since: str) -> MetricsResult:
    span = period(since)
    names = envs or [n for n in ctx.project.stack_names() if not ctx.project.environment(n).is_registry
                     and not ctx.project.environment(n).follows_stack]
    environments = [ctx.project.app_environment(n) for n in names]  # every name checked before any read
    for env in environments:
        if env.follows_stack:
            from dockyard.release.project import pin_hint

            raise BadInput(f"{env.name} follows the registry stack and has no release history", hint=pin_hint(env.name))
    now = ctx.now()
    return MetricsResult(since=since, environments=[compute(e.name, ctx.store(e).history(), now=now, since=span)
                                                    for e in environments])
