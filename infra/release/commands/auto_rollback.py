"""The automatic rollback: a release that failed verification is replaced by the environment's known-good
one, which is deployed and verified again, and the environment is held (promote refuses until --release-hold)."""

from __future__ import annotations

from typing import NoReturn

from dockyard.errors import DockyardError
from dockyard.manifest import Release, Rollback
from dockyard.release.context import Context
from dockyard.release.insights import hooks as insights
from dockyard.release.project import Environment
from dockyard.release.recovery import faults
from dockyard.release.stores.base import KNOWN_GOOD, Hold, ReleaseStore
from dockyard.targets import checks as verify


def roll_back_automatically(ctx: Context, env: Environment, store: ReleaseStore, failed: int,
                            failure: DockyardError) -> NoReturn:
    """Release `failed` did not verify: put the known-good release back, verify it, hold the environment.

    Always ends in an error (exit 1): the promote did not do what was asked. The message says what
    failed, what was restored, and how to lift the hold.
    """
    cause = failure.message.split("its deploy failed: ", 1)[-1]
    what = f"release {failed} of {env.name} failed verification ({cause})"
    insights.notify(ctx, env, "verification-failed", what, version=failed)  # queued: the rollback does not wait
    known_good = store.labels().get(KNOWN_GOOD)
    target = store.get(known_good) if known_good is not None and known_good != failed else None
    if target is None:
        raise verify.VerificationFailed(f"{what}; there is no known-good release, so nothing was rolled back",
                                        hint=f"fix the cause, then: dockyard deploy {env.name}")
    ctx.log(f"{what}: rolling back to known-good release {target.version}...")
    images = target.release.image_strings()
    release = Release(images=target.release.images, source=f"rollback:v{target.version}",
                      commit=target.release.commit, by=ctx.user, at=ctx.timestamp(), verified=target.release.verified,
                      image_config=target.release.image_config,
                      reason=f"automatic rollback: release {failed} failed verification",
                      rollback=Rollback(of=failed, to=target.version, cause="automatic", reason=cause))
    appended = store.append(release, expected=failed)
    faults.at("during-auto-rollback")  # written, not yet held: a re-run finishes it (recovery/resume.py)
    store.set_hold(Hold(version=appended.version, by=ctx.user, at=ctx.timestamp(),
                        reason=f"release {failed} failed verification; rolled back automatically"))
    lift = f"fix the cause, then promote with --release-hold (dockyard promote {env.name} --from <src> --release-hold)"
    restored = f"rolled back automatically to release {target.version} (as release {appended.version})"
    insights.notify(ctx, env, "hold", f"{env.name} is held: release {failed} failed verification", version=failed)
    from dockyard.release.commands.promotion import deploy_release

    try:
        deploy_release(ctx, env, store, appended.version, images)
    except DockyardError as err:
        insights.notify(ctx, env, "automatic-rollback", f"{what}; {restored}, which failed too: {err.message}",
                        version=appended.version, restored=target.version, verified=False)
        raise verify.VerificationFailed(
            f"{what}; the automatic rollback to release {target.version} (release {appended.version}) failed "
            f"too: {err.message}", hint=f"{env.name} is held; look at what runs, then {lift}") from None
    insights.notify(ctx, env, "automatic-rollback", f"{what}; {restored}, verified", version=appended.version,
                    restored=target.version, verified=True)
    raise verify.VerificationFailed(
        f"{what}; rolled back automatically to release {target.version} (as release {appended.version}, "
        f"verified); {env.name} is held", hint=lift)
