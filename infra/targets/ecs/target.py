"""Target ecs: ECS Fargate services, one per dockyard service, behind the stack's load balancer."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.targets import Target, routed
from dockyard.targets.ecs import config

if TYPE_CHECKING:
    from dockyard.app.image_source import ResolvedRelease
    from dockyard.config import AppSettings
    from dockyard.release.context import Context
    from dockyard.release.project import Environment
    from dockyard.release.stores.base import ReleaseStore


class EcsTarget(Target):
    name = "ecs"
    aws = True

    def starter_config(self, project: str, env: str) -> tuple[dict[str, Any], str]:
        return {}, ("# A VPC of its own, a load balancer and one Fargate service per service; no database until\n"
                    "# dockyard:database says so (README: App stacks on ECS Fargate).\n")

    def check_settings(self, settings: AppSettings) -> None:
        config.check_priorities(settings.services)
        config.check_health_types(settings.services)
        config.check_storage(settings.services)

    def secret_reference(self, path: str, ref: str) -> None:
        config.secret_reference(path, ref)

    def database(self, raw: Any, share_from: str | None) -> Any:
        return config.database(raw, share_from)

    def deployment_keys(self) -> bool:
        return True

    program_module = "dockyard.targets.ecs.program"

    def program(self, settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
        from dockyard.targets.ecs import program

        program.deploy(settings, release)

    def verify(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
               outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
        from dockyard.targets import checks
        from dockyard.targets.ecs import rollout

        if outputs.get("deployments"):
            # Each service's deployment completed (not rolled back) and runs the digests ECS resolved.
            rollout.verify_deployments(ctx, outputs, wanted, env=env.name)
        from dockyard.targets.version import recorded_commits

        checks.check_health(env.settings, outputs, timeout=ctx.health_timeout, log=ctx.log,
                            commits=recorded_commits(store, version))

    def abort(self, ctx: Context, env: Environment, *, reason: str | None, yes: bool) -> Any:
        from dockyard.targets.ecs import abort

        return abort.abort(ctx, env, reason=reason, yes=yes)

    def branch_config(self, ctx: Context, base: Environment, stack: str, config: MutableMapping[str, Any]) -> None:
        # The base's own fully qualified name: its organization is the backend's, never a literal.
        config["dockyard:shareFrom"] = ctx.deployer.qualified_name(base.name)
        config.pop("dockyard:database", None)  # the base's database, shared
        config.pop("dockyard:network", None)

    def branch_listener_port(self, ctx: Context, base: Environment, stack: str) -> int | None:
        if not routed(base.settings.services):
            return None
        from dockyard.targets.ecs import branch

        return branch.listener_port(ctx, base, stack)


TARGET = EcsTarget()
