"""Kubernetes objects for one service, as plain manifests (pure: validated against the schema in tests).

`image` may be a Pulumi Output: the manifests are plain dicts that carry it
through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard import naming
from dockyard.config import ServiceSettings
from dockyard.images import architecture

RUN_AS = 10001  # the images' user (see images/*/Dockerfile)
SERVICE_PORT = 80
CPU_TARGET_PERCENT = 60
RELEASE_ANNOTATION = "dockyard.dev/release"
PSS_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")} | {
    f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}


@dataclass(frozen=True)
class ServiceContext:
    """Everything about the stack a service's manifests need besides its own settings."""

    stack: str
    namespace: str
    release: str  # "<source>:<version>", e.g. "ssm:7"
    ingress_class: str | None
    ingress_from: tuple[Mapping[str, Any], ...]  # NetworkPolicy peers allowed to reach routed services
    host: str | None
    tls_secret: str | None
    database_secret: str | None  # passed as envFrom
    # Secret name -> the one to read instead, or None to read none (a branch never gets the base's
    # database secret).
    secret_renames: Mapping[str, str | None] = field(default_factory=dict)


def selector_labels(service: ServiceSettings, ctx: ServiceContext) -> dict[str, str]:
    return {"app.kubernetes.io/name": service.name, "app.kubernetes.io/instance": f"{service.name}-{ctx.stack}"[:63]}


def labels(service: ServiceSettings, ctx: ServiceContext) -> dict[str, str]:
    return {**selector_labels(service, ctx), "app.kubernetes.io/component": "web" if service.routed else "worker",
            "app.kubernetes.io/part-of": "dockyard", "app.kubernetes.io/managed-by": "pulumi"}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**PSS_LABELS, "app.kubernetes.io/part-of": "dockyard"}}}


def _meta(service: ServiceSettings, ctx: ServiceContext, **extra: Any) -> dict[str, Any]:
    return {"name": service.name, "namespace": ctx.namespace, "labels": labels(service, ctx), **extra}


def service_account(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    # The services never call the Kubernetes API: no token in the pod.
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(service, ctx),
            "automountServiceAccountToken": False}


def _cpu(units: int) -> str:
    return f"{units * 1000 // 1024}m"  # ECS cpu units: 1024 = one vCPU


def _probes(service: ServiceSettings) -> dict[str, Any]:
    if service.port is not None:
        check: dict[str, Any] = {"httpGet": {"path": service.health_check_path, "port": "http"}}
    elif service.health_check_command:
        check = {"exec": {"command": list(service.health_check_command)}}
    else:
        return {}
    return {
        "startupProbe": {**check, "periodSeconds": 2, "failureThreshold": 30, "timeoutSeconds": 3},
        "readinessProbe": {**check, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 3},
        "livenessProbe": {**check, "periodSeconds": 15, "failureThreshold": 3, "timeoutSeconds": 5},
    }


def _environment(service: ServiceSettings, ctx: ServiceContext) -> list[dict[str, Any]]:
    env = [{"name": k, "value": v} for k, v in sorted(service.environment.items())]
    if service.port is not None and "PORT" not in service.environment:
        env.append({"name": "PORT", "value": str(service.port)})
    for name, ref in sorted(service.secrets.items()):
        secret, key = ref.split("/", 1)
        secret = ctx.secret_renames.get(secret, secret)
        if secret is None:
            continue
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def pod_spec(service: ServiceSettings, ctx: ServiceContext, image: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": service.name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # a digest never changes: pull once per node
        "env": _environment(service, ctx),
        "resources": {"requests": {"cpu": _cpu(service.cpu), "memory": f"{service.memory}Mi"},
                      "limits": {"cpu": _cpu(service.cpu), "memory": f"{service.memory}Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        **_probes(service),
    }
    if service.port is not None:
        container["ports"] = [{"name": "http", "containerPort": service.port, "protocol": "TCP"}]
    if ctx.database_secret:
        container["envFrom"] = [{"secretRef": {"name": ctx.database_secret}}]
    return {
        "serviceAccountName": service.name,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,
        # The image is built for one platform: pods scheduled elsewhere fail with `exec format error`.
        "nodeSelector": {"kubernetes.io/arch": architecture(service.platform), "kubernetes.io/os": "linux"},
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": selector_labels(service, ctx)}}],
    }


def deployment(service: ServiceSettings, ctx: ServiceContext, image: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(service, ctx, annotations={RELEASE_ANNOTATION: ctx.release}),
        "spec": {
            # No `replicas`: the HPA owns the count (minReplicas..maxReplicas). Setting it here would
            # reset a scaled-out Deployment on every release and conflict with the controller under
            # server-side apply. A new Deployment starts at one pod; the HPA raises it to minReplicas.
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(service, ctx)},
            # Never below the running count: new pods must be ready before old ones go.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(service, ctx)}, "spec": pod_spec(service, ctx, image)},
        },
    }


def cluster_service(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(service, ctx),
            "spec": {"type": "ClusterIP", "selector": selector_labels(service, ctx),
                     "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]}}


def disruption_budget(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(service, ctx),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(service, ctx)}}}


def autoscaler(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(service, ctx),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
                     "minReplicas": max(service.min_count, 1), "maxReplicas": service.max_count,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT}}}]}}


def ingress_host(service: ServiceSettings, ctx: ServiceContext) -> str | None:
    """The service's host; a branch stack's is `<stack>.<host>`, so it never takes a route of its base.

    The `branch-` label can never be another environment's host, and one wildcard DNS record (and
    certificate) per host serves every branch.
    """
    host = service.host or ctx.host
    if host is None or not naming.is_branch_stack(ctx.stack):
        return host
    wildcard, bare = host.startswith("*."), host.removeprefix("*.")
    if not bare.startswith(f"{ctx.stack}."):  # `dockyard branch up` may have written it so already
        bare = f"{ctx.stack}.{bare}"
    return f"*.{bare}" if wildcard else bare


def ingress(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    path = (service.path or "/").replace("*", "") or "/"
    rule: dict[str, Any] = {"http": {"paths": [{"path": path, "pathType": "Prefix", "backend": {
        "service": {"name": service.name, "port": {"name": "http"}}}}]}}
    host = ingress_host(service, ctx)
    if host:
        rule["host"] = host
    spec: dict[str, Any] = {"rules": [rule]}
    if ctx.ingress_class:
        spec["ingressClassName"] = ctx.ingress_class
    if ctx.tls_secret and host:
        spec["tls"] = [{"hosts": [host], "secretName": ctx.tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(service, ctx), "spec": spec}


def network_policy(service: ServiceSettings, ctx: ServiceContext) -> dict[str, Any]:
    """Only the ingress controller (the configured peers) and this stack's own pods may connect."""
    own_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "dockyard"}}}
    sources: list[Any] = [own_pods]
    if service.routed:
        sources += [dict(peer) for peer in ctx.ingress_from]
    rule: dict[str, Any] = {"from": sources}
    if service.port is not None:
        rule["ports"] = [{"protocol": "TCP", "port": service.port}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(service, ctx),
            "spec": {"podSelector": {"matchLabels": selector_labels(service, ctx)}, "policyTypes": ["Ingress"],
                     "ingress": [rule]}}


def referenced_secrets(objects: list[dict[str, Any]]) -> set[str]:
    """Names of the Secrets that pods (env, envFrom) and Ingresses (TLS) of `objects` read."""
    names: set[str] = set()
    for obj in objects:
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
                          if "secretKeyRef" in e.get("valueFrom", {})}
                names |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
        elif obj["kind"] == "Ingress":
            names |= {t["secretName"] for t in obj["spec"].get("tls", []) if t.get("secretName")}
    return names


def service_objects(service: ServiceSettings, ctx: ServiceContext, image: Any) -> list[dict[str, Any]]:
    """Every object of one service, in apply order."""
    objects = [service_account(service, ctx), deployment(service, ctx, image)]
    if service.port is not None:
        objects.append(cluster_service(service, ctx))
        objects.append(ingress(service, ctx))
    if service.desired_count > 1:
        objects.append(disruption_budget(service, ctx))
    objects.append(autoscaler(service, ctx))
    objects.append(network_policy(service, ctx))
    return objects
