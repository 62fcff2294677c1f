"""ECS deployments after `up`: follow each service's deployment phase by phase, then check that it
completed and that every container runs the digest ECS resolved for the release.

ECS records what a deployment did: its status (rolled back by the circuit breaker, an alarm or a
lifecycle hook, or stopped), and in its service revision the resolved image digest of every container.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.targets import checks as verify
from dockyard.release.context import Context
from dockyard.targets.checks import VerificationFailed

# Service deployment statuses ECS is still working on.
IN_FLIGHT = frozenset({"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
ROLLING_BACK = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
SERVICES_PER_CALL = 10  # DescribeServices
ARNS_PER_CALL = 20  # DescribeServiceDeployments, DescribeServiceRevisions

STAGES = {
    "RECONCILE_SERVICE": "reconciling",
    "PRE_SCALE_UP": "starting new tasks",
    "SCALE_UP": "starting new tasks",
    "POST_SCALE_UP": "new tasks started",
    "TEST_TRAFFIC_SHIFT": "shifting test traffic",
    "POST_TEST_TRAFFIC_SHIFT": "serving test traffic",
    "PRODUCTION_TRAFFIC_SHIFT": "shifting traffic",
    "POST_PRODUCTION_TRAFFIC_SHIFT": "traffic shifted",
    "BAKE_TIME": "baking",
    "CLEAN_UP": "cleaning up",
}
ENDED = {"PENDING": "pending", "SUCCESSFUL": "completed", "STOP_REQUESTED": "stopping", "STOPPED": "stopped",
         "ROLLBACK_REQUESTED": "rolling back", "ROLLBACK_IN_PROGRESS": "rolling back",
         "ROLLBACK_SUCCESSFUL": "rolled back", "ROLLBACK_FAILED": "rollback failed"}


@dataclass(frozen=True)
class Tracked:
    """One service of the stack and the ECS service deployment it is on."""

    service: str  # dockyard's name
    cluster: str
    name: str  # the ECS service's name
    deployment_arn: str | None  # None: ECS reports none (a service from before service deployments)


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def current_deployments(ecs: Any, outputs: Mapping[str, Any]) -> list[Tracked]:
    """Each exported service's current service deployment: one DescribeServices per cluster and 10 services."""
    by_cluster: dict[str, dict[str, str]] = {}
    for service, entry in sorted((outputs.get("deployments") or {}).items()):
        by_cluster.setdefault(entry["cluster"], {})[entry["service"]] = service
    tracked = []
    for cluster, names in by_cluster.items():
        for batch in _batches(sorted(names), SERVICES_PER_CALL):
            page = ecs.describe_services(cluster=cluster, services=batch)
            for failure in page.get("failures") or []:
                raise VerificationFailed(f"ECS service {failure.get('arn')} not found: {failure.get('reason')}")
            for described in page.get("services") or []:
                name = described["serviceName"]
                tracked.append(Tracked(service=names[name], cluster=cluster, name=name,
                                       deployment_arn=described.get("currentServiceDeployment")))
    return tracked


def describe(ecs: Any, arns: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for batch in _batches(arns, ARNS_PER_CALL):
        page = ecs.describe_service_deployments(serviceDeploymentArns=batch)
        for failure in page.get("failures") or []:
            raise DockyardError(f"ECS service deployment {failure.get('arn')}: {failure.get('reason')}")
        found.update({d["serviceDeploymentArn"]: d for d in page.get("serviceDeployments") or []})
    return found


def _rollback_cause(d: Mapping[str, Any]) -> str | None:
    if (d.get("deploymentCircuitBreaker") or {}).get("status") == "TRIGGERED":
        return "circuit breaker"
    alarms = d.get("alarms") or {}
    if alarms.get("status") == "TRIGGERED":
        return "alarm " + ", ".join(alarms.get("triggeredAlarmNames") or alarms.get("alarmNames") or ["?"])
    hook = _failed_hook(d)
    if hook:
        return f"lifecycle hook {hook.get('targetArn') or hook.get('hookId')}"
    return None


def _failed_hook(d: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((h for h in d.get("lifecycleHookDetails") or [] if h.get("status") in ("FAILED", "TIMED_OUT")), None)


def phase(d: Mapping[str, Any]) -> str:
    """What a person wants to know about a deployment right now, from its state alone."""
    status = d.get("status", "")
    if status == "IN_PROGRESS":
        stage = d.get("lifecycleStage", "")
        text = STAGES.get(stage, "in progress")
        target = d.get("targetServiceRevision") or {}
        if stage.endswith("PRODUCTION_TRAFFIC_SHIFT") and "requestedProductionTrafficWeight" in target:
            text += f" {target['requestedProductionTrafficWeight']:g} %"
        if any(h.get("status") in ("AWAITING_ACTION", "IN_PROGRESS") for h in d.get("lifecycleHookDetails") or []):
            text += ", waiting for a lifecycle hook"
        return text
    text = ENDED.get(status, status.lower() or "unknown")
    cause = _rollback_cause(d) if status in ROLLING_BACK or status == "ROLLBACK_SUCCESSFUL" else None
    return f"{text} ({cause})" if cause else text


def failure(d: Mapping[str, Any]) -> str | None:
    """Why a finished deployment does not count as deployed; None when it completed."""
    status = d.get("status")
    if status == "SUCCESSFUL":
        return None
    why = d.get("statusReason") or ""
    breaker, alarms, hook = d.get("deploymentCircuitBreaker") or {}, d.get("alarms") or {}, _failed_hook(d)
    if breaker.get("status") == "TRIGGERED":
        cause = (f"the deployment circuit breaker rolled it back ({breaker.get('failureCount', '?')} of "
                 f"{breaker.get('threshold', '?')} tasks failed)")
    elif alarms.get("status") == "TRIGGERED":
        names = alarms.get("triggeredAlarmNames") or alarms.get("alarmNames") or ["?"]
        cause = f"alarm {', '.join(names)} rolled it back"
    elif hook is not None:
        cause = (f"lifecycle hook {hook.get('targetArn') or hook.get('hookId')} "
                 f"{'timed out' if hook.get('status') == 'TIMED_OUT' else 'failed'}; ECS rolled it back")
    elif status in ("ROLLBACK_SUCCESSFUL", "STOPPED"):
        cause = "it was stopped and rolled back (dockyard abort, or StopServiceDeployment)"
    elif status == "ROLLBACK_FAILED":
        cause = "its rollback failed"
    else:
        cause = f"it ended {status}"
    return f"{cause}: {why}" if why else cause


def watch(ctx: Context, ecs: Any, tracked: list[Tracked], *, env: str) -> dict[str, dict[str, Any]]:
    """Poll until no deployment is in flight: one DescribeServiceDeployments per interval for all of them
    (20 a call), a line only when a service's phase changes. Returns service -> its final deployment."""
    by_arn = {t.deployment_arn: t for t in tracked if t.deployment_arn}
    latest: dict[str, dict[str, Any]] = {}
    shown: dict[str, str] = {}
    deadline = time.monotonic() + ctx.ecs_timeout
    pending = list(by_arn)
    while True:
        for arn, deployment in describe(ecs, pending).items():
            latest[arn] = deployment
            now = phase(deployment)
            if shown.get(arn) != now:
                shown[arn] = now
                ctx.log(f"  {by_arn[arn].service}: {now}")
        pending = [a for a in by_arn if a not in latest or latest[a].get("status") in IN_FLIGHT]
        if not pending:
            return {by_arn[a].service: latest[a] for a in by_arn}
        if time.monotonic() >= deadline:
            stuck = by_arn[pending[0]]
            raise DockyardError(f"ECS service {stuck.name} is still {shown.get(pending[0], 'pending')} after "
                                f"{ctx.ecs_timeout:.0f} s", hint=f"wait and run `dockyard deploy {env}` again, or "
                                                                 f"stop it: dockyard abort {env}")
        ctx.sleep(ctx.ecs_poll_seconds)


def serving_revision(d: Mapping[str, Any]) -> str | None:
    """The revision a finished deployment left serving: its target, or what it rolled back to."""
    if d.get("status") == "SUCCESSFUL":
        return (d.get("targetServiceRevision") or {}).get("arn")
    rolled_back_to = (d.get("rollback") or {}).get("serviceRevisionArn")
    if rolled_back_to:
        return rolled_back_to
    sources = d.get("sourceServiceRevisions") or []
    return sources[0].get("arn") if sources else None


def check_digests(ecs: Any, revisions: Mapping[str, str], wanted: Mapping[str, str],
                  names: Mapping[str, str]) -> None:
    """Every container of each service's revision runs the wanted digest (service -> revision ARN)."""
    arns = list(dict.fromkeys(revisions[s] for s in sorted(revisions)))
    described: dict[str, dict[str, Any]] = {}
    for batch in _batches(arns, ARNS_PER_CALL):
        page = ecs.describe_service_revisions(serviceRevisionArns=batch)
        for failure_ in page.get("failures") or []:
            raise VerificationFailed(f"ECS service revision {failure_.get('arn')}: {failure_.get('reason')}")
        described.update({r["serviceRevisionArn"]: r for r in page.get("serviceRevisions") or []})
    for service, arn in sorted(revisions.items()):
        want = ImageRef.parse(wanted[service]).digest
        containers = (described.get(arn) or {}).get("containerImages") or []
        if not containers:
            raise VerificationFailed(f"ECS service {names[service]}: revision {arn} records no container image")
        for container in containers:
            running = container.get("imageDigest")
            if running != want:
                raise VerificationFailed(
                    f"ECS service {names[service]} runs {running or 'no resolved digest'} "
                    f"(container {container.get('containerName')}), not the wanted {want}",
                    hint=f"see the revision: aws ecs describe-service-revisions --service-revision-arns {arn}")


def verify_deployments(ctx: Context, outputs: Mapping[str, Any], wanted: Mapping[str, str], *, env: str) -> None:
    """After `up`: wait for each service's deployment, fail on any that did not complete, check digests."""
    ecs = ctx.aws.ecs()
    tracked = current_deployments(ecs, outputs)
    if not tracked:
        return
    if any(t.deployment_arn is None for t in tracked):
        # ECS reports no service deployment (an API or service from before them): the task definition check.
        verify.check_ecs(outputs, ecs)
        return
    final = watch(ctx, ecs, tracked, env=env)
    names = {t.service: t.name for t in tracked}
    for t in tracked:
        reason = failure(final[t.service])
        if reason:
            raise VerificationFailed(f"ECS service {t.name}: {reason}",
                                     hint=f"see its events: aws ecs describe-services --cluster {t.cluster} "
                                          f"--services {t.name}")
    revisions = {t.service: serving_revision(final[t.service]) for t in tracked if t.service in wanted}
    check_digests(ecs, {s: r for s, r in revisions.items() if r}, wanted, names)
