"""The Nomad job of an app stack, as the JSON the Nomad API takes (pure: settings and images in, a dict out).

Shape: one job per environment, one task group per service. A release is one job version: Nomad's
`auto_revert` then puts back the whole previous release at once, as dockyard's own rollback does,
and `nomad job history` lines up with the release history. Groups keep each service's count,
update policy, health checks and restarts apart.

The same dict is what `nomad job run -json` reads, what a GitOps flow commits (render mode),
what the provider's Job resource submits, and what `dockyard` registers through `/v1/jobs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard import naming
from dockyard.config import AppSettings, ServiceSettings
from dockyard.images import architecture

RUN_AS = "10001:10001"  # the images' user (see images/*/Dockerfile)
SCRATCH_BYTES = 64 * 1024 * 1024  # the writable /tmp (tmpfs): the only writable path
SECOND = 1_000_000_000  # the API takes durations in nanoseconds
JOB_PREFIX = "dockyard-"
RELEASE_META = "dockyard_release"  # "<source>:<version>", e.g. "file:3": the release this job version runs
STACK_META = "dockyard_stack"
SERVICE_NAME_MAX = 63  # Nomad service names are RFC 1123 labels
HTTP_PORT = "http"


def job_id(stack: str) -> str:
    """`dockyard-<stack>`: a branch stack's job is `dockyard-branch-<slug>`, never its base's."""
    naming.validate_stack_name(stack)
    return f"{JOB_PREFIX}{stack}"


def service_name(service: str, stack: str) -> str:
    """The Nomad service registration of one service of one stack (RFC 1123, at most 63)."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{service}-{stack}".lower()).strip("-")
    name = naming.fit(raw, SERVICE_NAME_MAX)
    # A changed name (case, '_' or '.') could meet another stack's: the hash keeps them apart.
    if raw != f"{service}-{stack}" and name == raw:
        name = naming.fit(f"{raw}-{naming.short_hash(stack)}", SERVICE_NAME_MAX)
    return name


def release_number(meta: Mapping[str, Any] | None) -> int | None:
    """The release version a job version runs, from its meta (`file:3` -> 3)."""
    value = (meta or {}).get(RELEASE_META, "")
    tail = str(value).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def mhz(cpu_units: int) -> int:
    """ECS cpu units (1024 = one vCPU) as Nomad MHz, at 1000 MHz a vCPU (the ratio the Kubernetes
    target uses for millicores)."""
    return max(cpu_units * 1000 // 1024, 100)


def update_policy(settings: AppSettings, service: ServiceSettings) -> dict[str, Any]:
    """How a new job version replaces the running one.

    Every environment: `auto_revert`, and no progress deadline, so the first allocation that turns
    unhealthy fails the deployment and Nomad goes back to the last stable version at once
    (rescheduling a broken release elsewhere only delays that). Base environments deploy one
    canary per service first and promote it automatically when healthy: the old allocations keep
    serving until then. Branch stacks (one allocation, nobody else's traffic) replace in place.
    """
    checks = "checks" if service.routed else "task_states"
    if settings.ephemeral:
        return {"MaxParallel": max(service.desired_count, 1), "Canary": 0, "AutoPromote": False,
                "AutoRevert": True, "HealthCheck": checks, "MinHealthyTime": 5 * SECOND,
                "HealthyDeadline": 120 * SECOND, "ProgressDeadline": 0, "Stagger": 10 * SECOND}
    return {"MaxParallel": 1, "Canary": 1, "AutoPromote": True, "AutoRevert": True, "HealthCheck": checks,
            "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 180 * SECOND, "ProgressDeadline": 0,
            "Stagger": 30 * SECOND}


def _environment(service: ServiceSettings) -> dict[str, str]:
    env = dict(sorted(service.environment.items()))
    if service.port is not None and "PORT" not in env:
        env["PORT"] = str(service.port)
    return env


def _service_registration(service: ServiceSettings, stack: str) -> list[dict[str, Any]]:
    """Routed services register with Nomad's own service catalogue, checked over HTTP on the health path.

    Workers register nothing (nothing calls them): Docker runs the image's own HEALTHCHECK, and the
    deployment counts a worker healthy when its task has run for min_healthy_time (Nomad's native
    checks are http and tcp only).
    """
    if service.port is None:
        return []
    return [{
        "Name": service_name(service.name, stack),
        "Provider": "nomad",
        "PortLabel": HTTP_PORT,
        "Tags": [f"stack={stack}", f"service={service.name}"],
        "Checks": [{"Name": f"{service.name} {service.health_check_path}", "Type": "http",
                    "Path": service.health_check_path, "PortLabel": HTTP_PORT, "Interval": 5 * SECOND,
                    "Timeout": 3 * SECOND}],
    }]


def task(service: ServiceSettings, image: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "image": image,  # pinned by digest: every allocation runs exactly the release's image
        "readonly_rootfs": True,
        "mount": [{"type": "tmpfs", "target": "/tmp", "readonly": False,
                   "tmpfs_options": {"size": SCRATCH_BYTES}}],
        "cap_drop": ["all"],
        "security_opt": ["no-new-privileges"],
        "healthchecks": {"disable": False},  # keep the image's own HEALTHCHECK
        "pids_limit": 256,
        "image_pull_timeout": "5m",
    }
    if service.port is not None:
        config["ports"] = [HTTP_PORT]
    return {
        "Name": service.name,
        "Driver": "docker",
        "User": RUN_AS,
        "Config": config,
        "Env": _environment(service),
        "Resources": {"CPU": mhz(service.cpu), "MemoryMB": service.memory},
        "KillSignal": "SIGTERM",
        "KillTimeout": 30 * SECOND,
        "LogConfig": {"MaxFiles": 3, "MaxFileSizeMB": 10},
    }


def group(settings: AppSettings, service: ServiceSettings, image: str) -> dict[str, Any]:
    networks = []
    if service.port is not None:
        # A host port chosen by Nomad, mapped to the container's port (host networking: no CNI needed).
        networks = [{"Mode": "host", "DynamicPorts": [{"Label": HTTP_PORT, "To": service.port}]}]
    return {
        "Name": service.name,
        "Count": service.desired_count,
        # The image is built for one platform: an allocation elsewhere fails with `exec format error`.
        "Constraints": [{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="},
                        {"LTarget": "${attr.cpu.arch}", "RTarget": architecture(service.platform), "Operand": "="}],
        "Networks": networks,
        "Services": _service_registration(service, settings.stack),
        "Update": update_policy(settings, service),
        # A crashing task restarts twice in place, then its allocation fails (and counts as unhealthy).
        "RestartPolicy": {"Attempts": 2, "Interval": 300 * SECOND, "Delay": 5 * SECOND, "Mode": "fail"},
        # Outside a deployment, a failed allocation is placed again, backing off to once every 10 min.
        "ReschedulePolicy": {"Attempts": 0, "Interval": 0, "Unlimited": True, "Delay": 30 * SECOND,
                             "DelayFunction": "exponential", "MaxDelay": 600 * SECOND},
        "EphemeralDisk": {"SizeMB": 150},
        "Tasks": [task(service, image)],
    }


def job(settings: AppSettings, images: Mapping[str, str], release: str) -> dict[str, Any]:
    """The job of an environment running `images` (service -> pinned reference) of `release`."""
    missing = sorted(set(settings.services) - set(images))
    if missing:
        raise ValueError(f"the release has no image for {', '.join(missing)}")
    nomad = settings.nomad
    return {"Job": {
        "ID": job_id(settings.stack),
        "Name": job_id(settings.stack),
        "Type": "service",
        "Namespace": nomad.namespace,
        "Region": nomad.region,
        "Datacenters": list(nomad.datacenters),
        "Meta": {STACK_META: settings.stack, RELEASE_META: release},
        "TaskGroups": [group(settings, service, images[name]) for name, service in sorted(settings.services.items())],
    }}


def images_of(spec: Mapping[str, Any]) -> dict[str, str]:
    """service -> image of a job (with or without the `Job` wrapper)."""
    body = spec.get("Job", spec)
    return {g["Name"]: g["Tasks"][0]["Config"]["image"] for g in body.get("TaskGroups") or []}
