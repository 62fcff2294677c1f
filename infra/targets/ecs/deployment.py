"""ECS deployment strategy settings (`dockyard:deployment`, `services.<name>.deployment`), validated.

Pure: raw values in, a frozen DeploymentSettings out, or one ConfigError naming the key path, the
value and what ECS accepts. The environment sets the default; a service changes single keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.errors import ConfigError
from dockyard.validation import boolean, decode, fail

if TYPE_CHECKING:
    from dockyard.targets import Target

STRATEGIES = ("rolling", "blueGreen", "canary", "linear")
# What ECS's DeploymentConfiguration.strategy calls each.
ECS_STRATEGY = {"rolling": "ROLLING", "blueGreen": "BLUE_GREEN", "canary": "CANARY", "linear": "LINEAR"}
# Strategies that shift traffic between two target groups; a service without a port has none to shift.
TRAFFIC_SHIFTING = ("canary", "linear")
KEYS = ("strategy", "bakeTimeInMinutes", "canaryPercent", "canaryBakeTimeInMinutes", "stepPercent",
        "stepBakeTimeInMinutes", "alarms", "circuitBreaker")
# Keys that only mean something for some strategies.
APPLIES_TO = {
    "bakeTimeInMinutes": ("blueGreen", "canary", "linear"),
    "canaryPercent": ("canary",),
    "canaryBakeTimeInMinutes": ("canary",),
    "stepPercent": ("linear",),
    "stepBakeTimeInMinutes": ("linear",),
}
MAX_MINUTES = 1440  # ECS: bake times 0-1440 minutes
ALARM_NAME_MAX = 255  # CloudWatch alarm names


@dataclass(frozen=True)
class DeploymentSettings:
    """How ECS replaces a service's tasks. Bake times are minutes; percentages of production traffic."""

    strategy: str = "rolling"
    # blueGreen/canary/linear: both revisions run this long after all traffic moved (ECS needs it for blue/green).
    bake_time_minutes: int = 5
    canary_percent: float = 5.0
    canary_bake_time_minutes: int = 5
    step_percent: float = 10.0
    step_bake_time_minutes: int = 5
    alarms: tuple[str, ...] = ()  # CloudWatch alarm names that roll the deployment back
    circuit_breaker: bool = True

    @property
    def two_revisions(self) -> bool:
        """Blue/green, canary and linear keep the old revision until the new one has baked."""
        return self.strategy != "rolling"


def _entry(path: str, raw: Any) -> dict[str, Any]:
    value = decode(path, raw)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(path, value, "an object of " + ", ".join(KEYS))
    for key in value:
        if key not in KEYS:
            raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(KEYS)}")
    return value


def _minutes(path: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MINUTES:
        raise fail(path, value, f"a whole number from 0 to {MAX_MINUTES}")
    return value


def _percent(path: str, value: Any, low: float) -> float:
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    ok = isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)
    # ECS takes multiples of 0.1 only.
    if not ok or not low <= number <= 100 or abs(number * 10 - round(number * 10)) > 1e-6:
        raise fail(path, value, f"a multiple of 0.1 from {low:g} to 100")
    return round(float(number), 1)


def _alarms(path: str, value: Any) -> tuple[str, ...]:
    value = decode(path, value)
    if not isinstance(value, list):
        raise fail(path, value, "a list of CloudWatch alarm names")
    names = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not 1 <= len(name) <= ALARM_NAME_MAX or not name.isprintable():
            raise fail(f"{path}[{i}]", name, f"a CloudWatch alarm name of 1 to {ALARM_NAME_MAX} characters")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _strategy(path: str, value: Any) -> str:
    if value not in STRATEGIES:
        raise fail(path, value, "one of " + ", ".join(STRATEGIES))
    return value


def _check_applies(path: str, entry: Mapping[str, Any], strategy: str) -> None:
    for key in entry:
        allowed = APPLIES_TO.get(key)
        if allowed and strategy not in allowed:
            kind = "strategy" if len(allowed) == 1 else "strategies"
            raise ConfigError(f"dockyard:{path}.{key} applies to {kind} {', '.join(allowed)}, not {strategy}")


def environment(raw: Any, target: Target) -> dict[str, Any]:
    """`dockyard:deployment`, checked on its own; returned raw for services to merge over."""
    entry = _entry("deployment", raw)
    if entry and not target.deployment_keys():
        raise ConfigError(f"dockyard:deployment applies to target ecs (this stack's target is {target.name})")
    _build("deployment", entry, routed=True)
    return entry


def for_service(name: str, env: Mapping[str, Any], raw: Any, *, routed: bool, target: Target) -> DeploymentSettings:
    """A service's settings: the environment's, with the service's own keys over them."""
    path = f"services.{name}.deployment"
    own = _entry(path, raw)
    if own and not target.deployment_keys():
        raise ConfigError(f"dockyard:{path} applies to target ecs (this stack's target is {target.name})")
    strategy = _strategy(f"{path}.strategy", own["strategy"]) if "strategy" in own else env.get("strategy", "rolling")
    if not routed and strategy in TRAFFIC_SHIFTING:
        if "strategy" in own:
            raise ConfigError(f"dockyard:{path}.strategy: got {strategy!r}; {name} has no port, so no traffic to "
                              "shift: expected rolling or blueGreen")
        # ECS shifts no traffic for a service no load balancer fronts: the environment's canary or
        # linear deploys a worker blue/green, with the same bake time and alarms.
        strategy = "blueGreen"
    _check_applies(path, own, strategy)
    # Inherited keys of another strategy (a canary environment's canaryPercent for a blue/green service) drop out.
    inherited = {k: v for k, v in env.items() if strategy in APPLIES_TO.get(k, STRATEGIES)}
    return _build(path, {**inherited, **own, "strategy": strategy}, routed=routed, check=False)


def _build(path: str, entry: Mapping[str, Any], *, routed: bool, check: bool = True) -> DeploymentSettings:
    strategy = _strategy(f"{path}.strategy", entry.get("strategy", "rolling"))
    if check:
        _check_applies(path, entry, strategy)
    defaults = DeploymentSettings()
    return DeploymentSettings(
        strategy=strategy,
        bake_time_minutes=_minutes(f"{path}.bakeTimeInMinutes", entry.get("bakeTimeInMinutes",
                                                                          defaults.bake_time_minutes)),
        canary_percent=_percent(f"{path}.canaryPercent", entry.get("canaryPercent", defaults.canary_percent), 0.1),
        canary_bake_time_minutes=_minutes(f"{path}.canaryBakeTimeInMinutes",
                                          entry.get("canaryBakeTimeInMinutes", defaults.canary_bake_time_minutes)),
        step_percent=_percent(f"{path}.stepPercent", entry.get("stepPercent", defaults.step_percent), 3.0),
        step_bake_time_minutes=_minutes(f"{path}.stepBakeTimeInMinutes",
                                        entry.get("stepBakeTimeInMinutes", defaults.step_bake_time_minutes)),
        alarms=_alarms(f"{path}.alarms", entry.get("alarms", [])),
        circuit_breaker=boolean(f"{path}.circuitBreaker", entry.get("circuitBreaker", True)),
    )
