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

from dockyard.config.spans import describe
from dockyard.config.windows import Windows
from dockyard.release.insights import windows as freeze
from dockyard.release.insights.metrics import parse_time
from dockyard.release.stores.base import KNOWN_GOOD, ReleaseStore

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


@dataclass
class AutoPromoted:
    """An --auto run that promoted: the promote's own result, and why the gate let it through."""

    promoted: Any  # commands.promotion.PromoteResult
    gate: Gate

    def to_json(self) -> dict[str, Any]:
        return {**self.promoted.to_json(), "promoted": True, "waiting": None, "message": self.gate.message,
                "candidate": self.gate.candidate}

    def lines(self) -> list[str]:
        return [f"Soaked: {self.gate.message}.", *self.promoted.lines()]


def promote_when_ready(ctx: Any, env_name: str, source_name: str, *, services: list[str], reason: str | None,
                       deploy: bool, auto_rollback: bool, override_window: bool = False,
                       release_hold: bool = False) -> Gate | AutoPromoted:
    """`promote ENV --from SRC --auto`: promote when the gate says so (no prompt: it is meant for CI),
    else return the gate's answer, which the command prints and exits 0 on."""
    from dockyard.errors import BadInput
    from dockyard.release.commands import promotion
    from dockyard.release.project import REGISTRY

    if override_window or release_hold:
        raise BadInput("--auto never overrides a window or lifts a hold",
                       hint="leave out --override-window and --release-hold, or promote without --auto")
    if source_name == REGISTRY:
        raise BadInput("--auto promotes from an environment, whose known-good release can soak; not from registry",
                       hint=f"dockyard promote {env_name} --from <environment> --auto")
    env = ctx.project.app_environment(env_name)
    soak = getattr(env.settings, "soak", None)
    if soak is None:
        raise BadInput(f"{env_name} has no dockyard:soak: --auto needs to know how long a release must run "
                       f"verified in {source_name} first", hint=f"set it in Pulumi.{env_name}.yaml, e.g. "
                                                               "dockyard:soak: 24h")
    source_env = ctx.project.app_environment(source_name)
    if env.follows_stack or source_env.follows_stack:
        from dockyard.release.project import pin_hint

        raise BadInput(f"{env_name if env.follows_stack else source_name} follows the registry stack; --auto needs "
                       "release stores on both sides", hint=pin_hint(env_name if env.follows_stack else source_name))
    gate = decide(env=env_name, source=source_name, soak=soak, target=ctx.store(env),
                  source_store=ctx.store(source_env), windows=getattr(env.settings, "windows", None),
                  services=set(env.settings.services), now=ctx.now())
    if gate.waiting is not None:
        ctx.log(gate.lines()[0])
        return gate
    ctx.log(f"{source_name} -> {env_name}: {gate.message}; promoting")
    result = promotion.promote(ctx, env_name, source_name, services=services, deploy=deploy, yes=True,
                               release_hold=False, auto_rollback=auto_rollback,
                               reason=reason or f"auto: {source_name}:v{gate.candidate} soaked {describe(soak)}")
    return AutoPromoted(promoted=result, gate=gate)
