"""An app stack on Kubernetes: a live cluster through a kubeconfig, or manifests rendered for GitOps."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from dockyard import naming
from dockyard.targets.kubernetes import manifests
from dockyard.app.image_source import ResolvedRelease
from dockyard.targets.kubernetes.service import KubernetesService, KubernetesServiceArgs, register
from dockyard.config import AppSettings, SecretDatabaseSettings


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
        # An empty kubeconfig: the SDK would otherwise take $KUBECONFIG, which the provider refuses
        # beside a render directory.
        return k8s.Provider("k8s", render_yaml_to_directory=str(out), kubeconfig="")
    return k8s.Provider(
        "k8s",
        kubeconfig=pulumi.Output.secret(kube.kubeconfig) if kube.kubeconfig else None,
        context=kube.context,
        # Changes to the kubeconfig (rotated credentials) must not replace every object.
        delete_unreachable=False,
    )


def database_secret(settings: AppSettings, branch: bool) -> tuple[str | None, dict[str, str | None]]:
    """The Secret passed as envFrom, and Secret renames: a branch reads `branchSecretName` (or
    nothing) wherever the base reads its database secret, never the base's own credentials."""
    db = settings.database
    if not isinstance(db, SecretDatabaseSettings) or db.secret_name is None:
        return None, {}
    if not branch:
        return db.secret_name, {}
    return db.branch_secret_name, {db.secret_name: db.branch_secret_name}


def copy_secrets(names: list[str], source: str, target: str, rendered: bool,
                 opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """Copy the Secrets a branch's pods read from the base's namespace into the branch's.

    A Secret is readable only from its own namespace, and the branch namespace starts empty. The copy
    is read through the provider (the stack's own credentials) and kept as a Pulumi secret; a
    branch `up` refreshes it. Rendered manifests never carry secret values: there the GitOps
    side must provide them.
    """
    if not names:
        return []
    if rendered:
        pulumi.log.warn(f"namespace {target} needs the Secrets {', '.join(names)} of namespace {source}; "
                        "rendered manifests never carry secret values, so provide them where the manifests "
                        "are applied")
        return []
    copies: list[pulumi.Resource] = []
    for name in names:
        # Read with the provider only: no parent, no depends_on, so the read happens in any order.
        existing = k8s.core.v1.Secret.get(f"base-secret-{name}", f"{source}/{name}",
                                          opts=pulumi.ResourceOptions(provider=opts.provider))
        copies.append(k8s.core.v1.Secret(
            f"secret-{name}",
            metadata={"name": name, "namespace": target,
                      "labels": {"app.kubernetes.io/part-of": "dockyard", "app.kubernetes.io/managed-by": "pulumi"},
                      "annotations": {"dockyard.dev/copied-from": f"{source}/{name}"}},
            type=existing.type, data=existing.data, opts=opts))
    return copies


def deploy(settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
    k8s_provider = provider(settings, project_dir)
    namespace = stack_namespace(settings)
    opts = pulumi.ResourceOptions(provider=k8s_provider)
    depends: list[pulumi.Resource] = []
    if settings.kubernetes.create_namespace or naming.is_branch_stack(settings.stack):
        depends.append(register("namespace", manifests.namespace(namespace), opts))
    kube = settings.kubernetes
    branch = naming.is_branch_stack(settings.stack)
    database, renames = database_secret(settings, branch)
    context = manifests.ServiceContext(
        stack=settings.stack, namespace=namespace,
        release=f"{release.source}:{release.version if release.version is not None else 'latest'}",
        ingress_class=kube.ingress_class, ingress_from=kube.ingress_from, host=kube.host,
        tls_secret=kube.tls_secret, database_secret=database, secret_renames=renames)
    if branch:
        needed = manifests.referenced_secrets([obj for service in settings.services.values()
                                               for obj in manifests.service_objects(service, context, "")])
        depends += copy_secrets(sorted(needed), kube.namespace, namespace, kube.render_dir is not None,
                                pulumi.ResourceOptions(provider=k8s_provider, depends_on=list(depends)))
    addresses, urls, deployments = {}, [], {}
    for name, service in sorted(settings.services.items()):
        deployed = KubernetesService(name, KubernetesServiceArgs(
            service=service, context=context, image=release.images.apply(lambda images, s=name: images[s]),
            skip_await=kube.render_dir is None),
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
