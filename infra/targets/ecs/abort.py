"""Abort on ECS: stop the environment's in-flight ECS deployments with rollback, wait until the previous
revisions serve again, verify their digests, and record that the newest release was aborted.

ECS's StopServiceDeployment with ROLLBACK puts back the revision that served before, on tasks that never
stopped (blue/green, canary and linear keep it until the bake ends): unlike `rollback`, nothing is
redeployed. The release written restores, for the services stopped, the images of the release before.
"""

from __future__ import annotations

from dockyard.errors import BadInput
from dockyard.images import ImageRef
from dockyard.manifest import Release, Rollback
from dockyard.release.commands.abort import AbortResult
from dockyard.release.context import Context, require_confirmation
from dockyard.release.project import Environment, pin_hint
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold
from dockyard.targets import checks as verify
from dockyard.targets.checks import VerificationFailed
from dockyard.targets.ecs import rollout as ecs_deploy

STARTED = frozenset({"PENDING", "IN_PROGRESS"})


def abort(ctx: Context, env: Environment, *, reason: str | None, yes: bool) -> AbortResult:
    env_name, settings = env.name, env.settings
    if env.follows_stack:
        raise BadInput(f"{env_name} follows the registry stack; it has no releases to record an abort in",
                       hint=pin_hint(env_name))
    store = ctx.store(env)
    current = store.current()
    if current is None:
        raise BadInput(f"{env_name} has no releases")
    outputs = ctx.deployer.outputs(env_name)
    if not outputs.get("deployments"):
        raise BadInput(f"stack {env_name} exports no ECS deployments", hint=f"deploy it first: dockyard deploy {env_name}")
    ecs = ctx.aws.ecs()
    tracked = ecs_deploy.current_deployments(ecs, outputs)
    known = [t for t in tracked if t.deployment_arn]
    state = ecs_deploy.describe(ecs, [t.deployment_arn for t in known]) if known else {}
    running = [t for t in known if state.get(t.deployment_arn, {}).get("status") in STARTED]
    if not running:
        raise BadInput(f"no ECS deployment of {env_name} is in flight: nothing to abort",
                       hint=f"to undo a deployment that finished: dockyard rollback {env_name}")
    # What served before the newest release: the last verified one (or simply the one before).
    to = store.labels().get(KNOWN_GOOD)
    if to is None or to >= current.version:
        to = current.version - 1
    target = store.get(to) if to >= 1 else None
    if target is None:
        raise BadInput(f"{env_name} has no release before {current.version} to return to",
                       hint="stop it in ECS (aws ecs stop-service-deployment) or wait for it to finish")
    stopped = sorted(t.service for t in running)
    # Services whose deployment already finished keep the newest release's images; only the stopped go back.
    previous = target.release.image_strings()
    images = {**current.release.image_strings(), **{s: previous[s] for s in stopped if s in previous}}
    for t in running:
        ctx.log(f"  {t.service}: {ecs_deploy.phase(state[t.deployment_arn])}; stopping with rollback")
    require_confirmation(ctx, f"Stop {', '.join(stopped)} of {env_name} and go back to release {to}?", yes=yes)
    for t in running:
        ecs.stop_service_deployment(serviceDeploymentArn=t.deployment_arn, stopType="ROLLBACK")
    # Stopped: recorded at once, whatever the wait below brings, so history never calls it deployed.
    why = reason or f"aborted release {current.version}"
    release = Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source=f"abort:v{to}",
                      commit=target.release.commit, by=ctx.user, reason=why, at=ctx.timestamp(),
                      rollback=Rollback(of=current.version, to=to, cause="aborted", reason=why))
    appended = store.append(release, expected=current.version)
    store.set_hold(Hold(version=appended.version, reason=why, by=ctx.user, at=ctx.timestamp()))
    result = AbortResult(env=env_name, aborted=current.version, restored=to, version=appended.version,
                         images=images, services=stopped)
    ctx.log(f"Aborting release {current.version} of {env_name} (recorded as release {appended.version})...")
    final = ecs_deploy.watch(ctx, ecs, running, env=env_name)
    for t in running:
        status = final[t.service].get("status")
        if status == "SUCCESSFUL":
            raise VerificationFailed(f"ECS service {t.name} finished release {current.version} before the stop "
                                     "took effect", hint=f"undo it with: dockyard rollback {env_name} --to {to}")
        if status == "ROLLBACK_FAILED":
            raise VerificationFailed(f"ECS service {t.name}: {ecs_deploy.failure(final[t.service])}",
                                     hint=f"see its events: aws ecs describe-services --cluster {t.cluster} "
                                          f"--services {t.name}")
    # What serves now: the stopped services' previous revisions, the others' finished deployments.
    finished = {t.service: state[t.deployment_arn] for t in known if t not in running}
    finished.update(final)
    revisions = {s: ecs_deploy.serving_revision(d) for s, d in finished.items() if s in images}
    ecs_deploy.check_digests(ecs, {s: r for s, r in revisions.items() if r}, images,
                             {t.service: t.name for t in tracked})
    verify.check_health(settings, outputs, timeout=ctx.health_timeout, log=ctx.log)
    store.label(DEPLOYED, appended.version)
    store.label(KNOWN_GOOD, appended.version)
    result.deployed = result.verified = True
    return result
