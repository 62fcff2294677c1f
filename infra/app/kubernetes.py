"""An app stack on Kubernetes: a live cluster through a kubeconfig, or manifests rendered for GitOps."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra import naming
from infra.app import k8s_manifests as manifests
from infra.app.image_source import ResolvedRelease
from infra.app.k8s_service import KubernetesService, KubernetesServiceArgs, register
from infra.config import AppSettings, SecretDatabaseSettings


def stack_namespace(settings: AppSettings) -> str:
    """A branch stack runs in `<namespace>-<slug>`, which its `destroy` removes with everything in it."""
    if naming.is_branch_stack(settings.stack):
        return naming.kubernetes_namespace(settings.kubernetes.namespace,
                                           settings.stack.removeprefix(naming.BRANCH_PREFIX))
    return settings.kubernetes.namespace


def provider(settings: AppSettings, project_dir: Path) -> k8s.Provider:
    kube = settings.kubernetes
    if kube.render_dir is not None:
        # No cluster: every object is written as YAML for Argo CD or Flux to apply.
        out = (project_dir / kube.render_dir).resolve()
        return k8s.Provider("k8s", render_yaml_to_directory=str(out))
    return k8s.Provider(
        "k8s",
        kubeconfig=pulumi.Output.secret(kube.kubeconfig) if kube.kubeconfig else None,
        context=kube.context,
        # Changes to the kubeconfig (rotated credentials) must not replace every object.
        delete_unreachable=False,
    )


def deploy(settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
    k8s_provider = provider(settings, project_dir)
    namespace = stack_namespace(settings)
    opts = pulumi.ResourceOptions(provider=k8s_provider)
    depends: list[pulumi.Resource] = []
    if settings.kubernetes.create_namespace or naming.is_branch_stack(settings.stack):
        depends.append(register("namespace", manifests.namespace(namespace), opts))
    kube = settings.kubernetes
    database = settings.database.secret_name if isinstance(settings.database, SecretDatabaseSettings) else None
    context = manifests.ServiceContext(
        stack=settings.stack, namespace=namespace,
        release=f"{release.source}:{release.version if release.version is not None else 'latest'}",
        ingress_class=kube.ingress_class, ingress_from=kube.ingress_from, host=kube.host,
        tls_secret=kube.tls_secret, database_secret=database)
    addresses, urls, deployments = {}, [], {}
    for name, service in sorted(settings.services.items()):
        deployed = KubernetesService(name, KubernetesServiceArgs(
            service=service, context=context, image=release.images.apply(lambda images, s=name: images[s])),
            opts=pulumi.ResourceOptions(providers=[k8s_provider], depends_on=depends))
        addresses[name] = deployed.url or deployed.address
        deployments[name] = {"namespace": namespace, "name": name}
        if deployed.url:
            urls.append(deployed.url)
    pulumi.export("url", urls[0] if urls else None)
    pulumi.export("services", addresses)
    pulumi.export("namespace", namespace)
    pulumi.export("deployments", deployments)
    pulumi.export("renderDir", str((project_dir / kube.render_dir).resolve()) if kube.render_dir else None)
