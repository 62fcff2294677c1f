"""promote, rollback and deploy: write a release, deploy it, verify it, label it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from dockyard import targets
from dockyard.errors import BadInput, Conflict, DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import Release, Rollback
from dockyard.release.context import Context, read_source, require_confirmation
from dockyard.release.engine import UpResult
from dockyard.release.project import Environment, pin_hint
from dockyard.release.registries import checks as registries
from dockyard.release.registries.checks import RELEASE_TAG
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Appended, Hold, ReleaseStore
from dockyard.release.trust import gate as trust
from dockyard.targets import checks as verify



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

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "from": self.source, "source": self.label, "version": self.version,
                "images": self.images,
                "deployed": self.deployed, "verified": self.verified,
                "changes": {c.service: {"from": c.old, "to": c.new} for c in self.changes}}

    def lines(self) -> list[str]:
        if not self.changes:
            return [f"{self.env} already runs what {self.label} has: nothing to promote."]
        state = "deployed and verified" if self.verified else ("deployed" if self.deployed else "written, not deployed")
        lines = [f"Promoted {self.label} -> {self.env}: release {self.version} ({state})."]
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

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "version": self.version, "restored": self.restored, "images": self.images,
                "deployed": self.deployed, "verified": self.verified, "held": True}

    def lines(self) -> list[str]:
        return [f"Rolled {self.env} back to release {self.restored}'s images as release {self.version}"
                f"{' (deployed)' if self.deployed else ' (not deployed)'}.",
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
    result = ctx.deployer.up(env.name)
    if store is not None and version is not None:
        read = (result.outputs.get("release") or {}).get("version")
        if read is not None and read != version:
            # Someone wrote a newer release between our read and the engine's: it deployed that one.
            store.label(DEPLOYED, int(read))
            raise Conflict(f"{env.name} deployed release {read}, not {version}: the release changed during the "
                           "deploy", hint=f"see `dockyard history {env.name}`, then deploy again")
        store.label(DEPLOYED, version)
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
            deploy: bool, yes: bool, release_hold: bool, auto_rollback: bool = True) -> PromoteResult:
    if env_name == source_name:
        raise BadInput(f"cannot promote {env_name} into itself", hint="--from names another environment or registry")
    env = ctx.project.app_environment(env_name)
    store = _store_of(ctx, env, "promote into")
    source = read_source(ctx, source_name)
    configured = set(env.settings.services)
    unknown = sorted(set(services) - configured)
    if unknown:
        raise BadInput(f"--service {unknown[0]}: {env_name} runs no such service",
                       hint=f"it runs {', '.join(sorted(configured))}")
    # Only what the environment runs: a source may carry services this environment does not deploy.
    offered = {s: r for s, r in source.release.image_strings().items() if s in configured}
    wanted_source = _narrow(offered, services, source_name)
    hold = store.hold()
    if hold and not release_hold:
        raise Conflict(f"{env_name} is held since {hold.at} by {hold.by}: {hold.reason or 'rollback'}",
                       hint=f"promote with --release-hold once the cause is fixed: dockyard promote {env_name} "
                            f"--from {source_name} --release-hold")
    current = store.current()
    base = current.release.image_strings() if current else {}
    missing = sorted(configured - set(base) - set(wanted_source))
    if missing:
        raise BadInput(f"{source_name} has no image for {', '.join(missing)}, which {env_name} runs",
                       hint="a first release must cover every service of the environment")
    images = {**base, **wanted_source}
    changes = [Change(s, base.get(s), ref) for s, ref in sorted(wanted_source.items()) if base.get(s) != ref]
    if not changes:
        if hold and release_hold:
            store.set_hold(None)
            ctx.log(f"{env_name}: hold released")
        return PromoteResult(env=env_name, source=source.name, label=source.label,
                             version=current.version if current else None, images=images, changes=[])
    present = registries.check_present(ctx, {c.service: c.new for c in changes},
                                       fix=f"push it first (dockyard build), or promote a release of {source_name} "
                                           "whose images exist")
    # Signatures and attestations before anything is written: an unproven image moves no tag, no release.
    proven = trust.check(ctx, env, {c.service: c.new for c in changes}, verb="promoted",
                         recorded=source.release.verified, commit=_commit(source.release))
    for change in changes:
        ctx.log(f"  {change.service}: {change.old or '(none)'} -> {change.new}")
    if deploy:
        targets.of(env.settings).preflight(ctx, env)  # credentials that cannot be used: refused before writing
    require_confirmation(ctx, f"Promote {source.label} -> {env_name}?", yes=yes)
    release = Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source=source.label,
                      commit=_commit(source.release), by=ctx.user, reason=reason, at=ctx.timestamp(),
                      verified=trust.merged(current.release if current else None, proven, images))
    appended = store.append(release, expected=current.version if current else None)
    ctx.log(f"Promoting {source.label} -> {env_name} (release {appended.version})...")
    result = PromoteResult(env=env_name, source=source.name, label=source.label, version=appended.version,
                           images=images, changes=changes)
    result.tagged = registries.tag_release(ctx, present, RELEASE_TAG.format(env=env_name, version=appended.version))
    if hold and release_hold:
        store.set_hold(None)
        ctx.log(f"{env_name}: hold released")
    _refuse_if_raced(store, appended, env_name, "promoting")
    if deploy:
        try:
            _deploy_written(ctx, env, store, appended.version, images)
        except verify.VerificationFailed as failure:
            if not auto_rollback:
                raise
            _roll_back_automatically(ctx, env, store, appended.version, failure)
        result.deployed = result.verified = True
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


def _roll_back_automatically(ctx: Context, env: Environment, store: ReleaseStore, failed: int,
                             failure: DockyardError) -> NoReturn:
    """Release `failed` did not verify: put the known-good release back, verify it, hold the environment.

    Always ends in an error (exit 1): the promote did not do what was asked. The message says what
    failed, what was restored, and how to lift the hold.
    """
    cause = failure.message.split("its deploy failed: ", 1)[-1]
    what = f"release {failed} of {env.name} failed verification ({cause})"
    known_good = store.labels().get(KNOWN_GOOD)
    target = store.get(known_good) if known_good is not None and known_good != failed else None
    if target is None:
        raise verify.VerificationFailed(f"{what}; there is no known-good release, so nothing was rolled back",
                                        hint=f"fix the cause, then: dockyard deploy {env.name}")
    ctx.log(f"{what}: rolling back to known-good release {target.version}...")
    images = target.release.image_strings()
    release = Release(images=target.release.images, source=f"rollback:v{target.version}",
                      commit=target.release.commit, by=ctx.user, at=ctx.timestamp(), verified=target.release.verified,
                      reason=f"automatic rollback: release {failed} failed verification",
                      rollback=Rollback(of=failed, to=target.version, cause="automatic", reason=cause))
    appended = store.append(release, expected=failed)
    store.set_hold(Hold(version=appended.version, by=ctx.user, at=ctx.timestamp(),
                        reason=f"release {failed} failed verification; rolled back automatically"))
    lift = f"fix the cause, then promote with --release-hold (dockyard promote {env.name} --from <src> --release-hold)"
    try:
        deploy_release(ctx, env, store, appended.version, images)
    except DockyardError as err:
        raise verify.VerificationFailed(
            f"{what}; the automatic rollback to release {target.version} (release {appended.version}) failed "
            f"too: {err.message}", hint=f"{env.name} is held; look at what runs, then {lift}") from None
    raise verify.VerificationFailed(
        f"{what}; rolled back automatically to release {target.version} (as release {appended.version}, "
        f"verified); {env.name} is held", hint=lift)


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
    require_confirmation(ctx, f"Roll {env_name} back to release {to}?", yes=yes)
    release = Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source=f"rollback:v{to}",
                      commit=target.release.commit, by=ctx.user,
                      reason=reason or f"rollback to release {to}", at=ctx.timestamp(),
                      rollback=Rollback(of=current.version, to=to, cause="manual",
                                        reason=reason or f"rollback to release {to}"),
                      verified=trust.merged(current.release, {**carried, **proven}, images))
    appended = store.append(release, expected=current.version)
    store.set_hold(Hold(version=appended.version, reason=reason or f"rolled back to release {to}", by=ctx.user,
                        at=ctx.timestamp()))
    result = RollbackResult(env=env_name, version=appended.version, restored=to, images=images)
    registries.tag_release(ctx, present, RELEASE_TAG.format(env=env_name, version=appended.version))
    _refuse_if_raced(store, appended, env_name, "rolling back")
    if deploy:
        _deploy_written(ctx, env, store, appended.version, images)
        result.deployed = result.verified = True
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
    up = deploy_release(ctx, env, store, version, images if store is not None else None)
    return DeployResult(env=env_name, version=version, images=images or dict(up.outputs.get("images") or {}),
                        deployed=True, verified=True, changes=up.changes, preview=False)

