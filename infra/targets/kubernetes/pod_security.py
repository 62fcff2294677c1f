"""A check of a pod spec against the Pod Security Standard `restricted` profile (pure).

The cluster enforces it through the namespace labels; this check catches a
violation before anything is applied, and runs where there is no cluster.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                        "projected", "secret"}
ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Every way `pod` (a PodSpec) breaks the restricted profile; empty when it complies."""
    problems = []
    pod_ctx = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{flag} is true")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')} uses {', '.join(sorted(kinds - ALLOWED_VOLUME_TYPES))}")
    if pod_ctx.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or []),
                  *(pod.get("ephemeralContainers") or [])]
    for container in containers:
        name = container.get("name", "?")
        ctx = container.get("securityContext") or {}
        if ctx.get("privileged"):
            problems.append(f"container {name} is privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name} must set allowPrivilegeEscalation: false")
        capabilities = ctx.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name} must drop ALL capabilities")
        added = set(capabilities.get("add") or []) - ALLOWED_ADDED_CAPABILITIES
        if added:
            problems.append(f"container {name} adds capabilities {', '.join(sorted(added))}")
        if not (ctx.get("runAsNonRoot") is True or (pod_ctx.get("runAsNonRoot") is True
                                                    and ctx.get("runAsNonRoot") is not False)):
            problems.append(f"container {name} must run as non-root (runAsNonRoot: true)")
        if ctx.get("runAsUser") == 0:
            problems.append(f"container {name} runAsUser is 0")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in SECCOMP_OK:
            problems.append(f"container {name} needs seccompProfile RuntimeDefault or Localhost")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"container {name} uses hostPort {port['hostPort']}")
    return problems
