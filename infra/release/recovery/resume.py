"""Finishing what a killed command left: every step of promote and rollback can be run again.

A release is "finished" once it verified (the `known-good` label is on it). A newest release that
is not finished was written by a command that stopped before the end: killed after writing it,
after tagging, during the engine's `up`, before the labels moved, or during verification; or its
deploy failed. Running the same command again takes that release up where it stopped, never writes
it a second time: it tags it (tags are idempotent), deploys it, labels and verifies it. An automatic
rollback cut short is finished the same way, and its environment held, even when the kill came
between writing it and the hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.release.context import Context
from dockyard.release.project import Environment
from dockyard.release.stores.base import KNOWN_GOOD, Hold, ReleaseStore, StoredRelease

if TYPE_CHECKING:
    from dockyard.release.commands.promotion import PromoteResult, RollbackResult


def unfinished(store: ReleaseStore, current: StoredRelease | None) -> bool:
    """The newest release never verified."""
    return current is not None and store.labels().get(KNOWN_GOOD) != current.version


def rollback_pending(store: ReleaseStore, cause: str = "automatic") -> StoredRelease | None:
    """The newest release is a rollback (of that cause) that never verified, or None."""
    current = store.current()
    if current is None or current.release.rollback is None or current.release.rollback.cause != cause:
        return None
    return current if unfinished(store, current) else None


def ensure_hold(ctx: Context, store: ReleaseStore, current: StoredRelease) -> None:
    """A rollback holds its environment: a kill between writing the rollback and the hold must not lose it."""
    rollback = current.release.rollback
    if rollback is None or store.hold() is not None or not unfinished(store, current):
        return
    reason = (f"release {rollback.of} failed verification; rolled back automatically" if rollback.cause == "automatic"
              else rollback.reason or f"rolled back to release {rollback.to}")
    store.set_hold(Hold(version=current.version, reason=reason, by=current.release.by or ctx.user,
                        at=current.release.at or ctx.timestamp()))


def _tag(ctx: Context, env: Environment, current: StoredRelease) -> list[str]:
    from dockyard.release.registries import checks as registries

    present = registries.check_present(ctx, current.release.image_strings(),
                                       fix=f"release {current.version} can no longer be pulled; "
                                           f"see dockyard history {env.name}")
    return registries.tag_release(ctx, present, registries.RELEASE_TAG.format(env=env.name, version=current.version))


def finish_automatic_rollback(ctx: Context, env: Environment, store: ReleaseStore) -> None:
    """If a killed promote left its automatic rollback unfinished: hold, deploy, verify it, and end as it would."""
    from dockyard.release.commands.promotion import deploy_release
    from dockyard.targets.checks import VerificationFailed

    current = rollback_pending(store)
    if current is None:
        return
    rollback = current.release.rollback
    assert rollback is not None
    ctx.log(f"{env.name}: the automatic rollback to release {rollback.to} (release {current.version}) was cut "
            "short; finishing it")
    ensure_hold(ctx, store, current)
    _tag(ctx, env, current)
    what = f"release {rollback.of} of {env.name} failed verification ({rollback.reason})"
    lift = f"fix the cause, then promote with --release-hold (dockyard promote {env.name} --from <src> --release-hold)"
    try:
        deploy_release(ctx, env, store, current.version, current.release.image_strings())
    except Exception as err:  # noqa: BLE001 - reported as the rollback's own failure, as the first run would
        message = getattr(err, "message", str(err))
        raise VerificationFailed(f"{what}; the automatic rollback to release {rollback.to} (release "
                                 f"{current.version}) failed too: {message}",
                                 hint=f"{env.name} is held; look at what runs, then {lift}") from None
    raise VerificationFailed(f"{what}; rolled back automatically to release {rollback.to} (as release "
                             f"{current.version}, verified); {env.name} is held", hint=lift)


def promote(ctx: Context, env: Environment, store: ReleaseStore, current: StoredRelease, *, result: PromoteResult,
            deploy: bool, auto_rollback: bool, lift_hold: bool) -> PromoteResult:
    """Finish the newest release, which holds exactly what this promote would write."""
    from dockyard.release.commands.auto_rollback import roll_back_automatically
    from dockyard.release.commands.promotion import Change, _deploy_written
    from dockyard.targets.checks import VerificationFailed

    labels = store.labels()
    proven = store.get(labels[KNOWN_GOOD]) if KNOWN_GOOD in labels else None
    before = proven.release.image_strings() if proven else {}
    images = current.release.image_strings()
    ctx.log(f"{env.name}: release {current.version} ({current.release.source}) was written but never verified; "
            "finishing it instead of writing it again")
    result.version, result.images = current.version, images
    if deploy:  # what this run changes where it runs; with --no-deploy it writes nothing new (tags aside)
        result.changes = [Change(s, before.get(s), ref) for s, ref in sorted(images.items()) if before.get(s) != ref]
    result.tagged = _tag(ctx, env, current)
    if lift_hold:
        store.set_hold(None)
        ctx.log(f"{env.name}: hold released")
    if deploy:
        try:
            _deploy_written(ctx, env, store, current.version, images)
        except VerificationFailed as failure:
            if not auto_rollback:
                raise
            roll_back_automatically(ctx, env, store, current.version, failure)
        result.deployed = result.verified = True
    return result


def rollback(ctx: Context, env: Environment, store: ReleaseStore, current: StoredRelease, to: int, *,
             deploy: bool) -> RollbackResult | None:
    """Finish a manual rollback to `to` that was cut short; None when the newest release is not one."""
    from dockyard.release.commands.promotion import RollbackResult, _deploy_written

    pending = rollback_pending(store, cause="manual")
    if pending is None or pending.version != current.version or pending.release.rollback.to != to:  # type: ignore[union-attr]
        return None
    ctx.log(f"{env.name}: the rollback to release {to} (release {current.version}) was cut short; finishing it")
    ensure_hold(ctx, store, current)
    _tag(ctx, env, current)
    images = current.release.image_strings()
    result = RollbackResult(env=env.name, version=current.version, restored=to, images=images)
    if deploy:
        _deploy_written(ctx, env, store, current.version, images)
        result.deployed = result.verified = True
    return result
