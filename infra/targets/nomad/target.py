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

    def starter_config(self, project: str, env: str) -> tuple[dict[str, Any], str]:
        return {}, "# The agent: the one NOMAD_ADDR names (or dockyard:nomad.address).\n"

    def reach(self) -> str | None:
        return "export NOMAD_ADDR=http://127.0.0.1:4646   # the agent dev deploys to"

    def secret_reference(self, path: str, ref: str) -> None:
        raise ConfigError(f"dockyard:{path}: the nomad target does not read secrets yet; keep them "
                          "in Nomad Variables and out of dockyard:services")

    def database(self, raw: Any, share_from: str | None) -> Any:
        if raw is None or raw is False:
            return None
        raise ConfigError("dockyard:database: the nomad target runs no database of its own; remove it and give "
                          "the services their connection settings in environment")

    program_module = "dockyard.targets.nomad.program"

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

        from dockyard.targets.nomad.releases import store_history

        running, error = deploy.status(env.settings, releases=store_history(env))
        return {"running": running, **({"error": error} if error else {})}

    def refresh_before_up(self, settings: AppSettings) -> bool:
        # Through the provider, Nomad's own auto_revert makes a job version the state does not know:
        # without a refresh the provider's next update fails on the job's modify index.
        return settings.nomad.render_dir is None

    def up_failed(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
                  error: Exception) -> None:
        from dockyard.targets.nomad import releases

        releases.after_failed_up(ctx, env, store, version)


TARGET = NomadTarget()
