"""The dashboard's data: every stack of the project read as `status` and `history` read them, turned
into the views of `model` (and only those)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dockyard import naming
from dockyard.config.spans import describe
from dockyard.errors import DockyardError
from dockyard.manifest import Release
from dockyard.release.commands import inspect
from dockyard.release.context import Context
from dockyard.release.insights.metrics import parse_time
from dockyard.release.insights.report import DEFAULT_SINCE, period
from dockyard.release.project import REGISTRY, Environment
from dockyard.release.stores.base import StoredRelease
from dockyard.release.ui import delivery
from dockyard.release.ui.changelogs import Changelogs
from dockyard.release.ui.engine_reads import EngineSnapshot
from dockyard.release.ui.model import (BranchView, ChangeView, Dashboard, EnvironmentView, EventView, HoldView,
                                       PromotionView, RecordView, RegistryView, RollbackView, ServiceView,
                                       TimelineView, short_digest)

# Where conventional environment names sit in a pipeline when their history does not say.
ORDER_HINT = ("dev", "development", "test", "qa", "staging", "stage", "uat", "preprod", "prod", "production")
EVENT_KINDS = {"manual": "manual rollback", "automatic": "automatic rollback", "aborted": "abort",
               "reverted": "revert"}
TIMELINE_LIMIT = 100


def source_env(label: str | None) -> str | None:
    """The environment a release came from: `dev:v3` -> dev, `registry` -> registry; None for rollbacks."""
    if not label:
        return None
    name = label.split("+", 1)[0].split(":", 1)[0]
    return None if name == "rollback" else name


@dataclass
class _Read:
    """One app stack as read: its settings, status and whole history (newest first), or why not."""

    name: str
    env: Environment | None = None
    status: inspect.EnvironmentStatus | None = None
    history: list[StoredRelease] = field(default_factory=list)
    error: str | None = None

    @property
    def current_images(self) -> dict[str, str]:
        return dict(self.status.images) if self.status else {}

    @property
    def current(self) -> StoredRelease | None:
        """The release the environment wants now (its newest), from the history read with it."""
        version = self.status.version if self.status else None
        return next((r for r in self.history if r.version == version), None) if version is not None else None


def _read(ctx: Context, name: str, engine: EngineSnapshot) -> _Read | None:
    """None for a registry-role stack (shown as the registry, not as an environment)."""
    read = _Read(name)
    try:
        read.env = ctx.project.environment(name)
        if read.env.is_registry:
            return None
        if read.env.follows_stack:
            read.status = inspect.EnvironmentStatus(name, "stack", None, dict(engine.images.get(name, {})),
                                                    None, None, None, error=engine.errors.get(name))
            return read
        read.status = inspect.environment_status(ctx, read.env)
        read.history = ctx.store(read.env).history()
    except DockyardError as err:
        read.error = err.message
    return read


def _rank(name: str) -> tuple[float, str]:
    return (ORDER_HINT.index(name) if name in ORDER_HINT else 4.5, name)


def pipeline(reads: Mapping[str, _Read]) -> tuple[list[str], dict[str, str]]:
    """The environments in promotion order, and each one's upstream (where its releases come from).

    Learnt from the releases themselves (`source: dev:v3` in prod means dev -> prod); an environment
    whose history says nothing takes its neighbour on the left, the first one the registry.
    """
    sources: dict[str, list[str]] = {}
    for name, read in reads.items():
        if read.env is not None and read.env.follows_stack:
            sources[name] = [REGISTRY]
            continue
        found = [s for r in read.history if (s := source_env(r.release.source)) and s != name
                 and (s in reads or s == REGISTRY)]
        sources[name] = list(dict.fromkeys(found))  # most recent first
    order: list[str] = []
    remaining = sorted(reads, key=_rank)
    while remaining:
        ready = [n for n in remaining if all(s == REGISTRY or s in order or s not in remaining
                                             for s in sources[n])]
        picked = ready[0] if ready else remaining[0]  # a cycle: fall back to the conventional order
        order.append(picked)
        remaining.remove(picked)
    upstream = {}
    for i, name in enumerate(order):
        upstream[name] = sources[name][0] if sources[name] else (order[i - 1] if i else REGISTRY)
    return order, upstream


def _service_views(read: _Read) -> tuple[ServiceView, ...]:
    status = read.status
    if status is None:
        return ()
    current = read.current
    running = ((status.running or {}).get("services") or {}) if status.running else {}
    views = []
    for service, image in sorted(status.images.items()):
        proof = current.release.verified.get(service) if current else None
        commit = (proof.commit if proof and proof.commit else None) or (current.release.commit if current else None)
        count = running.get(service)
        views.append(ServiceView(service=service, image=image, short=short_digest(image), commit=commit,
                                 signer=proof.signer if proof else None,
                                 running=f"{count['running']}/{count['wanted']}" if count else None))
    return tuple(views)


def _state(read: _Read) -> str:
    status = read.status
    if read.error or (status and status.error and not status.images):
        return "error"
    if read.env is not None and read.env.follows_stack:
        return "follows the registry"
    if status is None or status.version is None:
        return "no release"
    if status.known_good == status.version:
        return "verified"
    if status.deployed == status.version:
        return "not verified"
    return "not deployed"


def environment_view(read: _Read) -> EnvironmentView:
    status, env = read.status, read.env
    current = read.current
    held = status.held if status else None
    rollback = status.rollback if status else None
    drift = None
    if status is not None and status.drift:
        drift = f"wants v{status.version}, deployed " + (f"v{status.deployed}" if status.deployed else "nothing yet")
    return EnvironmentView(
        name=read.name, kind=env.store_kind if env else "?", target=getattr(env.settings, "target", None) if env
        else None, version=status.version if status else None, deployed=status.deployed if status else None,
        known_good=status.known_good if status else None, state=_state(read), drift=drift,
        held=HoldView(int(held["version"]), str(held["reason"]), str(held["by"]), str(held["at"])) if held else None,
        rollback=RollbackView(**rollback) if rollback else None, services=_service_views(read),
        source=current.release.source if current else None, by=current.release.by if current else None,
        at=current.release.at if current else None, reason=current.release.reason if current else None,
        error=read.error or (status.error if status else None), trust_warning=status.trust if status else None,
        window=status.window if status and status.window is not None and status.window.configured else None)


def registry_view(ctx: Context, engine: EngineSnapshot
                  ) -> tuple[RegistryView | None, dict[str, str], Release | None]:
    """The registry's view, its images, and its release when it has a release store."""
    if not ctx.project.config_file(REGISTRY).is_file():
        return None, {}, None
    try:
        env = ctx.project.environment(REGISTRY)
        if env.store_kind == "stack":
            images = dict(engine.images.get(REGISTRY, {}))
            view = RegistryView(kind="stack", services=_plain_services(images), error=engine.errors.get(REGISTRY),
                                reading=engine.generation == 0)
            return view, images, None
        current = ctx.store(env).current()
    except DockyardError as err:
        return RegistryView(kind="?", services=(), error=err.message), {}, None
    images = current.release.image_strings() if current else {}
    view = RegistryView(kind=env.store_kind, services=_plain_services(images),
                        label=f"{REGISTRY}:v{current.version}" if current else None,
                        error=None if current else "no release published yet (dockyard build)")
    return view, images, current.release if current else None


def _plain_services(images: Mapping[str, str]) -> tuple[ServiceView, ...]:
    return tuple(ServiceView(service=s, image=i, short=short_digest(i)) for s, i in sorted(images.items()))


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[ChangeView, ...]:
    return tuple(ChangeView(service=s, old=old.get(s), new=ref, old_short=short_digest(old[s]) if s in old else None,
                            new_short=short_digest(ref)) for s, ref in sorted(new.items()) if old.get(s) != ref)


def promotion_view(ctx: Context, target: _Read, source: str, source_images: Mapping[str, str],
                   source_release: Release | None, changelogs: Changelogs) -> PromotionView | None:
    env = target.env
    if env is None or env.follows_stack:
        return None
    configured = set(env.settings.services)
    offered = {s: r for s, r in source_images.items() if s in configured}
    held = target.status.held if target.status else None
    window = target.status.window if target.status else None
    command = f"dockyard promote {target.name} --from {source}" + (" --release-hold" if held else "")
    changes = _changes(target.current_images, offered)
    if not source_images:
        note = f"{source} has no release to promote yet"
    elif held:
        note = f"{target.name} is held: promote with --release-hold once the cause is fixed"
    elif not changes:
        note = f"{target.name} already runs {source}'s digests"
    elif window is not None and not window.open:
        note = (f"{target.name} is {window.describe()}: promotions wait until then (or --override-window "
                "--reason TEXT)")
    else:
        note = None
    # The commits each changed service would bring: what `promote` shows before its question.
    current = target.current
    changelog = changelogs.between(ctx, target.name, current.release if current else None,
                                   {c.service: c.new for c in changes},
                                   source_release.verified if source_release else None) if changes else None
    return PromotionView(source=source, into=target.name, changes=changes, command=command, note=note,
                         changelog=changelog)


def record_view(stored: StoredRelease, outcome: str | None) -> RecordView:
    release = stored.release
    rollback = release.rollback
    return RecordView(version=stored.version, images=tuple(sorted(release.image_strings().items())),
                      labels=tuple(stored.labels), source=release.source, by=release.by, at=release.at,
                      reason=release.reason, commit=release.commit, outcome=outcome,
                      rollback=RollbackView(**rollback.to_dict()) if rollback else None,
                      verified=tuple(sorted((s, v.signer) for s, v in release.verified.items())))


def timeline_view(name: str, history: list[StoredRelease], limit: int = TIMELINE_LIMIT) -> TimelineView:
    outcomes = inspect.HistoryResult(env=name, releases=history).outcomes()
    words = {"failed": "verification failed"}
    events = []
    for stored in history[:limit]:
        rollback = stored.release.rollback
        outcome = outcomes.get(stored.version)
        if rollback is None:
            kind, title, cause = "promote", f"promoted from {stored.release.source or 'unknown'}", None
        else:
            kind = EVENT_KINDS[rollback.cause]
            title = f"{kind}: v{rollback.of} undone, v{rollback.to} restored"
            cause = rollback.reason or None
        events.append(EventView(env=name, version=stored.version, kind=kind, title=title,
                                outcome=words.get(outcome, outcome) if outcome else None, cause=cause,
                                record=record_view(stored, outcome)))
    return TimelineView(env=name, events=tuple(events), total=len(history))


def branch_view(ctx: Context, stack: str, reads: Mapping[str, _Read], engine: EngineSnapshot, *,
                now: datetime, idle_for: timedelta) -> BranchView:
    try:
        env = ctx.project.app_environment(stack)
        current = ctx.store(env).current()
    except DockyardError as err:
        return BranchView(stack=stack, branch=stack, base=None, version=None, changed=(), url=None,
                          last_change=None, idle=None, removal=None, error=err.message)
    release = current.release if current else None
    base = source_env(release.source) if release else None
    reason = (release.reason or "") if release else ""
    branch = reason[len("branch "):] if reason.startswith("branch ") else stack
    base_images = reads[base].current_images if base in reads else {}
    changed = _changes(base_images, release.image_strings()) if release and base_images else ()
    last = engine.last_updates.get(stack) or parse_time(release.at if release else None)
    idle = removal = None
    if last is not None:
        last = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
        idle = describe(max(now - last, timedelta(0)))
        removal = (last + idle_for).strftime("%Y-%m-%dT%H:%M:%SZ")
    return BranchView(stack=stack, branch=branch, base=base, version=current.version if current else None,
                      changed=changed, url=engine.urls.get(stack),
                      last_change=last.strftime("%Y-%m-%dT%H:%M:%SZ") if last else None, idle=idle, removal=removal,
                      error=engine.errors.get(stack) if stack not in engine.urls else None)


def fingerprint(ctx: Context, engine: EngineSnapshot) -> str:
    """Changes whenever a release, label, hold or stack file changes (or the engine was read again);
    cheap enough to compute every second or two."""
    parts = [f"engine {engine.generation}"]
    for name in ctx.project.stack_names():
        path = ctx.project.config_file(name)
        parts.append(f"{name} {path.stat().st_mtime_ns if path.exists() else '-'}")
        try:
            env = ctx.project.environment(name)
            if env.store_kind in ("file", "ssm"):
                store = ctx.store(env)
                current = store.current()
                hold = store.hold()
                parts.append(f"{current.version if current else '-'} {sorted(store.labels().items())} "
                             f"{hold.to_dict() if hold else '-'}")
        except DockyardError as err:
            parts.append(err.message)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def engine_note(engine: EngineSnapshot, now: datetime) -> str:
    if engine.generation == 0:
        return "reading stack outputs from the engine..."
    age = describe(now - engine.read_at) if engine.read_at else "?"
    note = f"stack outputs read from the engine {age} ago"
    return note + (f"; stack list: {engine.stacks_error}" if engine.stacks_error else "")


def build(ctx: Context, engine: EngineSnapshot, *, version: str, idle_for: timedelta, idle_text: str,
          limit: int = TIMELINE_LIMIT, since_text: str = DEFAULT_SINCE, changelogs: Changelogs | None = None
          ) -> Dashboard:
    now = ctx.now()
    names = ctx.project.stack_names()
    app_names = [n for n in names if n != REGISTRY and not naming.is_branch_stack(n)]
    reads = {n: r for n in app_names if (r := _read(ctx, n, engine)) is not None}
    registry, registry_images, registry_release = registry_view(ctx, engine)
    order, upstream = pipeline(reads)
    changelogs = changelogs if changelogs is not None else Changelogs()
    promotions = []
    for name in order:
        source = upstream[name]
        images = registry_images if source == REGISTRY else reads[source].current_images
        source_current = reads[source].current if source in reads else None
        view = promotion_view(ctx, reads[name], source, images, registry_release if source == REGISTRY
                              else (source_current.release if source_current else None), changelogs)
        if view is not None:
            promotions.append(view)
    histories = {n: reads[n].history for n in order if reads[n].history}
    branches = [branch_view(ctx, s, reads, engine, now=now, idle_for=idle_for)
                for s in names if naming.is_branch_stack(s)]
    return Dashboard(project=ctx.project.name, generated_at=ctx.timestamp(), version=version,
                     registry=registry, environments=tuple(environment_view(reads[n]) for n in order),
                     promotions=tuple(promotions),
                     timelines=tuple(timeline_view(n, h, limit) for n, h in histories.items()),
                     branches=tuple(branches),
                     metrics=tuple(delivery.delivery_metrics(histories, now=now, since=period(since_text))),
                     metrics_since=since_text, idle_for=idle_text, engine_note=engine_note(engine, now))
