"""What the dashboard shows, field by field: the allow-list of everything that reaches the page.

Each view is a frozen dataclass; its JSON is its fields (camelCase) and nothing else, so a
secret can only reach the page by someone adding a field here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.release.insights.changelog import Changelog
    from dockyard.release.insights.metrics import EnvironmentMetrics
    from dockyard.release.insights.windows import WindowState


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_json(value: Any) -> Any:
    """A view as JSON: dataclass fields by camelCase name, tuples as lists; a value of another module that has
    its own JSON (the delivery figures) as that JSON."""
    if hasattr(value, "to_json") and not isinstance(value, type):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def short_digest(image: str) -> str:
    """`sha256:` and the first 12 hex digits: enough to tell releases apart at a glance."""
    digest = image.split("@", 1)[1] if "@" in image else image
    return digest[:19]


@dataclass(frozen=True)
class ServiceView:
    service: str
    image: str  # the full pinned reference (shown on hover, copied by the copy button)
    short: str
    commit: str | None = None  # the commit the image was built from, as the release records it
    signer: str | None = None  # who signed it, when the trust gate proved it
    running: str | None = None  # Nomad: running/wanted allocations


@dataclass(frozen=True)
class HoldView:
    version: int
    reason: str
    by: str
    at: str


@dataclass(frozen=True)
class RollbackView:
    of: int
    to: int
    cause: str
    reason: str


@dataclass(frozen=True)
class EnvironmentView:
    name: str
    kind: str  # file | ssm | stack
    target: str | None
    version: int | None
    deployed: int | None
    known_good: int | None
    state: str  # verified | not verified | not deployed | follows the registry | no release | error
    drift: str | None
    held: HoldView | None
    rollback: RollbackView | None
    services: tuple[ServiceView, ...]
    source: str | None = None
    by: str | None = None
    at: str | None = None
    reason: str | None = None
    error: str | None = None
    trust_warning: str | None = None
    # Freeze windows (`dockyard:windows`), only where some are configured: what `status` says (the same
    # function); its JSON is `status --json`'s `window`: open, window, until, configured.
    window: WindowState | None = None


@dataclass(frozen=True)
class RegistryView:
    kind: str
    services: tuple[ServiceView, ...]
    label: str | None = None  # "registry:v14", or None for a stack output
    error: str | None = None
    reading: bool = False  # the engine has not been asked yet


@dataclass(frozen=True)
class ChangeView:
    service: str
    old: str | None
    new: str
    old_short: str | None
    new_short: str


@dataclass(frozen=True)
class PromotionView:
    source: str
    into: str  # the environment the promote would write to
    changes: tuple[ChangeView, ...]
    command: str
    note: str | None = None
    # The commits each changed service would bring, as `promote` shows them (the same function); its JSON is
    # `promote --json`'s `changelog`. None when nothing would change.
    changelog: Changelog | None = None


@dataclass(frozen=True)
class RecordView:
    """One release record as `history --json` has it."""

    version: int
    images: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]
    source: str | None
    by: str | None
    at: str | None
    reason: str | None
    commit: str | None
    outcome: str | None
    rollback: RollbackView | None
    verified: tuple[tuple[str, str], ...]  # service -> signer


@dataclass(frozen=True)
class EventView:
    env: str
    version: int
    kind: str  # promote | manual rollback | automatic rollback | abort | revert
    title: str
    outcome: str | None
    cause: str | None  # a rollback's reason, in dockyard's words (what failed)
    record: RecordView

    @property
    def anchor(self) -> str:
        return f"{self.env}-v{self.version}"


@dataclass(frozen=True)
class TimelineView:
    env: str
    events: tuple[EventView, ...]
    total: int  # releases in the store; events holds the newest of them


@dataclass(frozen=True)
class BranchView:
    stack: str
    branch: str
    base: str | None
    version: int | None
    changed: tuple[ChangeView, ...]  # images that differ from the base's current release
    url: str | None
    last_change: str | None
    idle: str | None  # "3h 10m"
    removal: str | None  # when `branch gc --idle-for` would remove it
    error: str | None = None


@dataclass(frozen=True)
class WeekView:
    start: str  # YYYY-MM-DD
    deployments: int  # promotions written that week
    failures: int  # those a later release undid


@dataclass(frozen=True)
class MetricsView:
    env: str
    # What `dockyard metrics` computes for this environment (the same function, the same period); its JSON
    # is that command's document for it: since, until, days, deploymentFrequency, leadTime, changeFailureRate,
    # timeToRestore.
    figures: EnvironmentMetrics
    weeks: tuple[WeekView, ...]


@dataclass(frozen=True)
class Dashboard:
    project: str
    generated_at: str
    version: str  # changes whenever anything shown changes: what the open page polls for
    registry: RegistryView | None
    environments: tuple[EnvironmentView, ...]
    promotions: tuple[PromotionView, ...]
    timelines: tuple[TimelineView, ...]
    branches: tuple[BranchView, ...]
    metrics: tuple[MetricsView, ...]
    metrics_since: str  # the metrics' period, as `dockyard metrics --since` spells it
    idle_for: str
    engine_note: str

    def promotion_into(self, env: str) -> PromotionView | None:
        return next((p for p in self.promotions if p.into == env), None)
