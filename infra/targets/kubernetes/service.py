"""One service on Kubernetes: the objects of k8s_manifests, registered through pulumi-kubernetes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from dockyard.targets.kubernetes import manifests
from dockyard.config import ServiceSettings

SKIP_AWAIT = "pulumi.com/skipAwait"

# apiVersion/kind -> the typed resource that registers it.
KINDS: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
}


def register(name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Register a manifest as its typed resource: metadata, spec and any top-level field."""
    cls = KINDS[(obj["apiVersion"], obj["kind"])]
    fields = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return cls(name, opts=opts, **fields)


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


@dataclass(frozen=True)
class KubernetesServiceArgs:
    service: ServiceSettings
    context: manifests.ServiceContext
    image: pulumi.Input[str]
    # Live cluster: dockyard verifies the rollout itself (each pod's digest, health), so the provider
    # does not wait for it; its own wait would fail a crashing release in `up`, before dockyard's
    # verification could name the cause and roll it back. Nor for an Ingress's load balancer address,
    # which only an ingress controller (not part of every cluster) ever fills in.
    skip_await: bool = False


class KubernetesService(pulumi.ComponentResource):
    address: str | None
    url: str | None
    deployment: pulumi.CustomResource

    def __init__(self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:KubernetesService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service, ctx = args.service, args.context
        for obj in manifests.service_objects(service, ctx, args.image):
            if args.skip_await and obj["kind"] in ("Deployment", "Service", "Ingress"):
                meta = obj["metadata"]
                obj = {**obj, "metadata": {**meta, "annotations": {**meta.get("annotations", {}), SKIP_AWAIT: "true"}}}
            resource = register(f"{name}-{obj['kind'].lower()}", obj, child)
            if obj["kind"] == "Deployment":
                self.deployment = resource
        self.address = (f"http://{service.name}.{ctx.namespace}.svc.cluster.local:{manifests.SERVICE_PORT}"
                        if service.routed else None)
        host = manifests.ingress_host(service, ctx)
        path = (service.path or "/").replace("*", "")
        self.url = f"{'https' if ctx.tls_secret else 'http'}://{host}{path}" if host and service.routed else None
        self.register_outputs({"address": self.address, "url": self.url})
