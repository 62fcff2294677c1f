"""Target kubernetes: Deployments on a live cluster through a kubeconfig, or manifests rendered for GitOps."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.targets import Target
from dockyard.targets.kubernetes import config

if TYPE_CHECKING:
    from dockyard.app.image_source import ResolvedRelease
    from dockyard.config import AppSettings
    from dockyard.release.context import Context
    from dockyard.release.project import Environment
    from dockyard.release.stores.base import ReleaseStore


class KubernetesTarget(Target):
    name = "kubernetes"

    def starter_config(self, project: str, env: str) -> tuple[dict[str, Any], str]:
        return ({"dockyard:kubernetes": {"namespace": f"{project}-{env}"[:63].rstrip("-")}},
                "# The cluster: the one $KUBECONFIG names, or a kubeconfig kept as a secret:\n"
                f"#   pulumi config set --secret --path dockyard:kubernetes.kubeconfig -s {env} < ~/.kube/config\n")

    def reach(self) -> str | None:
        return "export KUBECONFIG=~/.kube/config   # the cluster dev deploys to"

    def check_settings(self, settings: AppSettings) -> None:
        config.check_branch_host(settings)

    def secret_reference(self, path: str, ref: str) -> None:
        config.secret_reference(path, ref)

    def database(self, raw: Any, share_from: str | None) -> Any:
        return config.database(raw, share_from)

    program_module = "dockyard.targets.kubernetes.program"

    def program(self, settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
        from dockyard.targets.kubernetes import program

        program.deploy(settings, release, project_dir)

    def hidden_environment(self, settings: AppSettings) -> tuple[str, ...]:
        # A rendering stack must not see the user's cluster: with $KUBECONFIG the Kubernetes provider
        # connects to it, and then even a preview writes the manifests into the render directory.
        return ("KUBECONFIG",) if settings.kubernetes.render_dir else ()

    def preflight(self, ctx: Context, env: Environment) -> None:
        if env.settings.kubernetes.render_dir:
            return
        from dockyard.targets.kubernetes import verify

        # Log in once now (an exec plugin runs here): what cannot be used is refused before `up`.
        settings = env.settings
        verify.preflight(settings, verify.kubeconfig_text(settings, lambda: verify.stack_secret(ctx.project.dir,
                                                                                               env.name)))

    def verify(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
               outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
        if outputs.get("renderDir"):
            from dockyard.targets import checks

            checks.check_rendered(Path(outputs["renderDir"]), wanted)
            return
        from dockyard.targets.kubernetes import verify

        # A live cluster: the rollout, each ready pod's imageID and readiness, read from the API server.
        settings = env.settings
        kubeconfig = verify.kubeconfig_text(settings, lambda: verify.stack_secret(ctx.project.dir, env.name))
        verify.verify_stack(settings, outputs, wanted, kubeconfig=kubeconfig, timeout=ctx.health_timeout,
                            log=ctx.log)

    def branch_config(self, ctx: Context, base: Environment, stack: str, config: MutableMapping[str, Any]) -> None:
        if "dockyard:kubernetes" in config:
            config["dockyard:kubernetes"] = _branch_kubernetes(config["dockyard:kubernetes"] or {}, stack)

    def branch_destroyed(self, ctx: Context, env: Environment) -> None:
        """The provider deletes the rendered files on destroy; leave no empty directories behind."""
        render_dir = env.settings.kubernetes.render_dir
        if not render_dir:
            return
        path = ctx.project.dir / render_dir
        if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
            shutil.rmtree(path)


def _branch_kubernetes(kube: Mapping[str, Any], stack: str) -> dict[str, Any]:
    kube = dict(kube)
    kube.pop("createNamespace", None)  # a branch always gets (and removes) its own namespace
    if kube.get("renderDir"):
        kube["renderDir"] = str(Path(kube["renderDir"]).parent / stack)
    if kube.get("host"):
        kube["host"] = f"{stack}.{kube['host']}"  # a wildcard DNS record serves every branch
    return kube


TARGET = KubernetesTarget()
