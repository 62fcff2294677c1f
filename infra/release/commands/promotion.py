"""promote, rollback and deploy: write a release, deploy it, verify it, label it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard import targets
from dockyard.errors import BadInput, Conflict, DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import Release, Rollback
from dockyard.release.commands.auto_rollback import roll_back_automatically
from dockyard.release.context import Context, require_confirmation
from dockyard.release.engine import UpResult
from dockyard.release.project import Environment, pin_hint
from dockyard.release.proven_source import read_promotable
from dockyard.release.recovery import faults, resume
from dockyard.release.registries import checks as registries
from dockyard.release.registries import image_config
from dockyard.release.registries.checks import RELEASE_TAG
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Appended, Hold, ReleaseStore
from dockyard.release.trust import gate as trust
from dockyard.targets import checks as verify
from dockyard.release.insights import hooks as insights



@dataclass(frozen=True)
class Change:
    service: str
    old: str | None
    new: str


@dataclass
class PromoteResult:
    env: str
    source: str  # the SRC name, as given to --from
    label: str  # what was promoted, e.g. "registry:v14" or "dev:v3"
    version: int | None
    images: dict[str, str]
    changes: list[Change]
    deployed: bool = False
    verified: bool = False
    tagged: list[str] = field(default_factory=list)
    changelog: Any = None  # insights.changelog.Changelog: the commits each changed service brings
    override: Any = None  # manifest.Override: promoted through a closed window
    newer_unverified: str | None = None  # a newer release of the source, not taken: it never verified there
    unverified: bool = False  # taken with --unverified

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "from": self.source, "source": self.label, "version": self.version,
                "images": self.images,
                "deployed": self.deployed, "verified": self.verified,
                "changes": {c.service: {"from": c.old, "to": c.new} for c in self.changes},
                "changelog": self.changelog.to_json() if self.changelog else {},
                "override": self.override.to_dict() if self.override else None,
                "newerUnverified": self.newer_unverified, "unverified": self.unverified}

    def lines(self) -> list[str]:
        newer = ([f"{self.newer_unverified} is newer but has not passed verification in {self.source}; "
                  f"promote it anyway with --unverified"] if self.newer_unverified else [])
        if not self.changes:
            return [f"{self.env} already runs what {self.label} has: nothing to promote.", *newer]
        state = "deployed and verified" if self.verified else ("deployed" if self.deployed else "written, not deployed")
        taken = ([f"{self.label} had not passed verification in {self.source}: taken with --unverified, "
                  "recorded in the release"] if self.unverified else [])
        lines = [f"Promoted {self.label} -> {self.env}: release {self.version} ({state}).", *taken, *newer]
        lines += [f"  {line}" for line in (self.changelog.lines() if self.changelog else [])]
        if not self.deployed:
            lines.append(f"Next: dockyard deploy {self.env}")
        return lines


@dataclass
class RollbackResult:
    env: str
    version: int
    restored: int
    images: dict[str, str]
    deployed: bool = False
    verified: bool = False
    changelog: Any = None  # insights.changelog.Changelog: the commits that leave

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "version": self.version, "restored": self.restored, "images": self.images,
                "deployed": self.deployed, "verified": self.verified, "held": True,
                "changelog": self.changelog.to_json() if self.changelog else {}}

    def lines(self) -> list[str]:
        return [f"Rolled {self.env} back to release {self.restored}'s images as release {self.version}"
                f"{' (deployed)' if self.deployed else ' (not deployed)'}.",
                *[f"  {line}" for line in (self.changelog.lines("leave") if self.changelog else [])],
                f"{self.env} is held: promotions into it refuse until one passes --release-hold."]


@dataclass
class DeployResult:
    env: str
    version: int | None
    images: dict[str, str]
    deployed: bool
    verified: bool
    changes: dict[str, int]
    preview: bool

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "version": self.version, "images": self.images, "deployed": self.deployed,
                "verified": self.verified, "preview": self.preview, "changes": self.changes}

    def lines(self) -> list[str]:
        summary = ", ".join(f"{k} {v}" for k, v in sorted(self.changes.items())) or "no changes"
        if self.preview:
            return [f"Preview of {self.env}: {summary}."]
        return [f"Deployed {self.env}{f' release {self.version}' if self.version else ''}: {summary}"
                f"{'; verified' if self.verified else ''}."]


# ----------------------------------------------------------------------------- shared steps


def _store_of(ctx: Context, env: Environment, verb: str) -> ReleaseStore:
    if env.follows_stack:
        raise BadInput(f"{env.name} follows the registry stack; it has no releases to {verb}", hint=pin_hint(env.name))
    return ctx.store(env)


def _narrow(images: Mapping[str, str], services: Iterable[str], where: str) -> dict[str, str]:
    services = list(services)
    unknown = sorted(set(services) - set(images))
    if unknown:
        raise BadInput(f"--service {unknown[0]}: {where} has no such service", hint=f"it has {', '.join(sorted(images))}")
    return {s: images[s] for s in services} if services else dict(images)


def _commit(source_release: Release) -> str | None:
    return source_release.commit or os.environ.get("DOCKYARD_COMMIT") or os.environ.get("GITHUB_SHA")


def deploy_release(ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
                   wanted: Mapping[str, str] | None) -> UpResult:
    """`up` the environment, label it deployed, verify what runs, label it known-good.

    `wanted` None (a stack-following environment): what the stack reports deploying is what is verified.
    """
    targets.of(env.settings).preflight(ctx, env)  # done already by promote and rollback: then it costs nothing
    ctx.log(f"Deploying {env.name}{f' (release {version})' if version else ''}...")
    try:
        result = ctx.deployer.up(env.name)
    except DockyardError as err:
        targets.of(env.settings).up_failed(ctx, env, store, version, err)  # the orchestrator may know better
        raise
    faults.at("after-up-before-label")
    if store is not None and version is not None:
        read = (result.outputs.get("release") or {}).get("version")
        if read is not None and read != version:
            # Someone wrote a newer release between our read and the engine's: it deployed that one.
            store.label(DEPLOYED, int(read))
            raise Conflict(f"{env.name} deployed release {read}, not {version}: the release changed during the "
                           "deploy", hint=f"see `dockyard history {env.name}`, then deploy again")
        store.label(DEPLOYED, version)
    faults.at("during-verify")
    if wanted is None:
        wanted = dict(result.outputs.get("images") or {})
    verify.check_images(result.outputs, wanted)
    targets.of(env.settings).verify(ctx, env, store, version, result.outputs, wanted)
    if store is not None and version is not None:
        store.label(KNOWN_GOOD, version)
    ctx.log(f"{env.name}: running release {version if version else '(stack)'} verified")
    return result


# ----------------------------------------------------------------------------- commands


def promote(ctx: Context, env_name: str, source_name: str, *, services: list[str], reason: str | None,
            deploy: bool, yes: bool, release_hold: bool, auto_rollback: bool = True,
            override_window: bool = False, unverified: bool = False) -> PromoteResult:
    insights.check_flags(override_window, reason)
    if env_name == source_name:
        raise BadInput(f"cannot promote {env_name} into itself", hint="--from names another environment or registry")
    env = ctx.project.app_environment(env_name)
    store = _store_of(ctx, env, "promote into")
    promotable = read_promotable(ctx, source_name, unverified=unverified)  # SRC's known-good, by default
    source = promotable.source
    configured = set(env.settings.services)
    unknown = sorted(set(services) - configured)
    if unknown:
        raise BadInput(f"--service {unknown[0]}: {env_name} runs no such service",
                       hint=f"it runs {', '.join(sorted(configured))}")
    # Only what the environment runs: a source may carry services this environment does not deploy.
    offered = {s: r for s, r in source.release.image_strings().items() if s in configured}
    wanted_source = _narrow(offered, services, source_name)
    if not release_hold:
        resume.finish_automatic_rollback(ctx, env, store)  # one a killed promote cut short: ends it, as it would
    hold = store.hold()
    if hold and not release_hold:
        raise Conflict(f"{env_name} is held since {hold.at} by {hold.by}: {hold.reason or 'rollback'}",
                       hint=f"promote with --release-hold once the cause is fixed: dockyard promote {env_name} "
                            f"--from {source_name} --release-hold")
    override = insights.window_gate(ctx, env, override=override_window, reason=reason, source=source_name)
    current = store.current()
    base = current.release.image_strings() if current else {}
    missing = sorted(configured - set(base) - set(wanted_source))
    if missing:
        raise BadInput(f"{source_name} has no image for {', '.join(missing)}, which {env_name} runs",
                       hint="a first release must cover every service of the environment")
    images = {**base, **wanted_source}
    changes = [Change(s, base.get(s), ref) for s, ref in sorted(wanted_source.items()) if base.get(s) != ref]
    if not changes and resume.unfinished(store, current):
        # The newest release is this one, written by a run that stopped before it verified: finish it.
        return resume.promote(ctx, env, store, current, deploy=deploy, auto_rollback=auto_rollback,
                              lift_hold=bool(hold and release_hold), result=PromoteResult(
                                  env=env_name, source=source.name, label=source.label, version=None, images=images,
                                  changes=[], newer_unverified=promotable.newer_unverified,
                                  unverified=promotable.unverified))
    if not changes:
        if hold and release_hold:
            store.set_hold(None)
            ctx.log(f"{env_name}: hold released")
            insights.notify(ctx, env, "hold-released", f"{env_name}: hold released by a promote of {source.label}")
        return PromoteResult(env=env_name, source=source.name, label=source.label,
                             version=current.version if current else None, images=images, changes=[],
                             newer_unverified=promotable.newer_unverified)
    present = registries.check_present(ctx, {c.service: c.new for c in changes},
                                       fix=f"push it first (dockyard build), or promote a release of {source_name} "
                                           "whose images exist")
    # Signatures and attestations before anything is written: an unproven image moves no tag, no release.
    proven = trust.check(ctx, env, {c.service: c.new for c in changes}, verb="promoted",
                         recorded=source.release.verified, commit=_commit(source.release))
    # Each new image's own user and commit; one that would run as root is refused here, before any write.
    new_images = {c.service: c.new for c in changes}
    facts = image_config.inspect(ctx, env, new_images, image_config.carried(source.release, new_images))
    for change in changes:
        ctx.log(f"  {change.service}: {change.old or '(none)'} -> {change.new}")
    if deploy:
        targets.of(env.settings).preflight(ctx, env)  # credentials that cannot be used: refused before writing
    # What each changed service brings, in commits, shown before the question and recorded in the release.
    changelog = insights.changelog(ctx, current.release if current else None, new_images, proven=proven,
                                   recorded=source.release.verified, show=not yes,
                                   commits={s: f.commit or "" for s, f in facts.items()})
    require_confirmation(ctx, f"Promote {source.label} -> {env_name}?", yes=yes)
    release = Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source=source.label,
                      commit=_commit(source.release), by=ctx.user, reason=reason, at=ctx.timestamp(),
                      unverified=source.label if promotable.unverified else None,
                      verified=trust.merged(current.release if current else None, proven, images),
                      changelog=changelog.record(), override=override,
                      image_config=image_config.merged(current.release if current else None, facts, images))
    appended = store.append(release, expected=current.version if current else None)
    faults.at("after-release-written")
    ctx.log(f"Promoting {source.label} -> {env_name} (release {appended.version})...")
    result = PromoteResult(env=env_name, source=source.name, label=source.label, version=appended.version,
                           images=images, changes=changes, changelog=changelog, override=override,
                           newer_unverified=promotable.newer_unverified, unverified=promotable.unverified)
    result.tagged = registries.tag_release(ctx, present, RELEASE_TAG.format(env=env_name, version=appended.version))
    faults.at("after-tag")
    if hold and release_hold:
        store.set_hold(None)
        ctx.log(f"{env_name}: hold released")
        insights.notify(ctx, env, "hold-released", f"{env_name}: hold released by a promote of {source.label}")
    _refuse_if_raced(store, appended, env_name, "promoting")
    if deploy:
        try:
            _deploy_written(ctx, env, store, appended.version, images)
        except verify.VerificationFailed as failure:
            if not auto_rollback:
                insights.notify(ctx, env, "verification-failed", failure.message, version=appended.version)
                raise
            roll_back_automatically(ctx, env, store, appended.version, failure)
        result.deployed = result.verified = True
    insights.notify(ctx, env, "promote", result.lines()[0], version=appended.version, **{"from": source.label},
                    images={c.service: c.new for c in changes}, changelog=changelog.to_json(),
                    override=override.to_dict() if override else None)
    return result


def _refuse_if_raced(store: ReleaseStore, appended: Appended, env_name: str, verb: str) -> None:
    """Our version is written (history keeps it), but others wrote in between: stop before deploying."""
    if appended.raced:
        raise Conflict(f"{store.where} changed while {verb}: release(s) "
                       f"{', '.join(map(str, appended.raced))} were written by someone else; yours is "
                       f"{appended.version}", hint=f"check `dockyard history {env_name}` before deploying")


def _deploy_written(ctx: Context, env: Environment, store: ReleaseStore, version: int,
                    wanted: Mapping[str, str]) -> UpResult:
    """Deploy a release just written; on failure say plainly that it is recorded but not (verified) running."""
    try:
        return deploy_release(ctx, env, store, version, wanted)
    except DockyardError as err:
        failure = type(err)(f"release {version} of {env.name} is written, but its deploy failed: {err.message}",
                            hint=err.hint or f"fix the cause, then: dockyard deploy {env.name}")
        raise failure from None


def rollback(ctx: Context, env_name: str, *, to: int | None, services: list[str], reason: str | None,
             deploy: bool, yes: bool) -> RollbackResult:
    env = ctx.project.app_environment(env_name)
    store = _store_of(ctx, env, "roll back")
    current = store.current()
    if current is None:
        raise BadInput(f"{env_name} has no releases to roll back to")
    if to is None:
        to = store.labels().get(KNOWN_GOOD)
        if to is None:
            raise BadInput(f"{env_name} has no known-good release", hint=f"pick one: dockyard history {env_name}, "
                                                                        f"then dockyard rollback {env_name} --to N")
    target = store.get(to)
    if target is None:
        kept = [r.version for r in store.history(limit=10)]
        raise BadInput(f"{env_name} has no release {to}", hint=f"recent releases: {', '.join(map(str, kept))}")
    restored = _narrow(target.release.image_strings(), services, f"release {to}")
    images = {**current.release.image_strings(), **restored}
    if images == current.release.image_strings():
        finished = resume.rollback(ctx, env, store, current, to, deploy=deploy)  # this rollback, cut short
        if finished is not None:
            return finished
        raise BadInput(f"{env_name}'s newest release ({current.version}) already has release {to}'s images: "
                       "nothing to roll back", hint=f"pick an older one: dockyard history {env_name}")
    ctx.log(f"Rolling {env_name} back to release {to}...")
    for service, ref in sorted(restored.items()):
        if current.release.image_strings().get(service) != ref:
            ctx.log(f"  {service}: {current.release.image_strings().get(service)} -> {ref}")
    # Retention or a person may have deleted an old digest: refuse before writing, not at pull time.
    present = registries.check_present(
        ctx, {s: r for s, r in restored.items() if current.release.image_strings().get(s) != r},
        fix=f"release {to} can no longer be pulled; pick another: dockyard history {env_name}")
    # A signature revoked (deleted) since, or never made, refuses the rollback as it would a promote.
    changed = {s: r for s, r in restored.items() if current.release.image_strings().get(s) != r}
    proven = trust.check(ctx, env, changed, verb="rolled back", recorded=target.release.verified,
                         commit=target.release.commit)
    carried = {s: v for s, v in target.release.verified.items() if s in changed}
    if deploy:
        targets.of(env.settings).preflight(ctx, env)
    facts = image_config.inspect(ctx, env, changed, image_config.carried(target.release, changed))
    # The same changelog as the promote that brought them, reversed: the commits that leave.
    changelog = insights.changelog(ctx, current.release, changed, recorded=target.release.verified,
                                   direction="leave", show=not yes,
                                   commits={s: f.commit or "" for s, f in facts.items()})
    require_confirmation(ctx, f"Roll {env_name} back to release {to}?", yes=yes)
    release = Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source=f"rollback:v{to}",
                      commit=target.release.commit, by=ctx.user,
                      reason=reason or f"rollback to release {to}", at=ctx.timestamp(),
                      rollback=Rollback(of=current.version, to=to, cause="manual",
                                        reason=reason or f"rollback to release {to}"),
                      verified=trust.merged(current.release, {**carried, **proven}, images),
                      changelog=changelog.record(),
                      image_config=image_config.merged(current.release, facts, images))
    appended = store.append(release, expected=current.version)
    faults.at("after-release-written")
    store.set_hold(Hold(version=appended.version, reason=reason or f"rolled back to release {to}", by=ctx.user,
                        at=ctx.timestamp()))
    result = RollbackResult(env=env_name, version=appended.version, restored=to, images=images, changelog=changelog)
    insights.notify(ctx, env, "hold", f"{env_name} is held: rolled back to release {to}", version=appended.version)
    registries.tag_release(ctx, present, RELEASE_TAG.format(env=env_name, version=appended.version))
    faults.at("after-tag")
    _refuse_if_raced(store, appended, env_name, "rolling back")
    if deploy:
        _deploy_written(ctx, env, store, appended.version, images)
        result.deployed = result.verified = True
    insights.notify(ctx, env, "rollback", result.lines()[0], version=appended.version, restored=to,
                    changelog=changelog.to_json())
    return result


def deploy(ctx: Context, env_name: str, *, preview: bool) -> DeployResult:
    env = ctx.project.app_environment(env_name)
    store = None if env.follows_stack else ctx.store(env)
    current = store.current() if store else None
    if store is not None and current is None:
        raise BadInput(f"{env_name} has no release to deploy",
                       hint=f"dockyard promote {env_name} --from <registry|environment>")
    images = current.release.image_strings() if current else {}
    version = current.version if current else None
    if preview:
        result = ctx.deployer.preview(env_name)
        return DeployResult(env=env_name, version=version, images=images, deployed=False, verified=False,
                            changes=result.changes, preview=True)
    if store is not None and current is not None:
        resume.ensure_hold(ctx, store, current)  # deploying a rollback a kill cut short: it holds, as it would have
    up = deploy_release(ctx, env, store, version, images if store is not None else None)
    return DeployResult(env=env_name, version=version, images=images or dict(up.outputs.get("images") or {}),
                        deployed=True, verified=True, changes=up.changes, preview=False)

