"""Target nomad: one job per environment, submitted by the provider or, rendered, by dockyard itself."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import ConfigError
from dockyard.targets import Target

if TYPE_CHECKING:
    from dockyard.app.image_source import ResolvedRelease
    from dockyard.config import AppSettings
    from dockyard.release.context import Context
    from dockyard.release.project import Environment
    from dockyard.release.stores.base import ReleaseStore


class NomadTarget(Target):
    name = "nomad"

    def secret_reference(self, path: str, ref: str) -> None:
        raise ConfigError(f"dockyard:{path}: the nomad target does not read secrets yet; keep them "
                          "in Nomad Variables and out of dockyard:services")

    def database(self, raw: Any, share_from: str | None) -> Any:
        if raw is None or raw is False:
            return None
        raise ConfigError("dockyard:database: the nomad target runs no database of its own; remove it and give "
                          "the services their connection settings in environment")

    def program(self, settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
        from dockyard.targets.nomad import program

        program.deploy(settings, release, project_dir)

    def verify(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
               outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
        from dockyard.targets.nomad import deploy

        # The rendered job submitted as `nomad job run` would (with an address), its deployment followed,
        # each allocation's digest and health checked; a Nomad auto-revert is recorded and held there.
        deploy.deploy_and_verify(ctx, env, store, version, outputs, wanted)

    def running(self, env: Environment) -> dict[str, Any]:
        """Wanted vs running allocations per service (or why Nomad could not say)."""
        from dockyard.targets.nomad import deploy

        running, error = deploy.status(env.settings)
        return {"running": running, **({"error": error} if error else {})}


TARGET = NomadTarget()
