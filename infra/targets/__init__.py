"""The orchestrators dockyard deploys to, behind one interface, and the one place that maps
`dockyard:target` to its implementation.

Each orchestrator is a folder here (`ecs/`, `kubernetes/`, `nomad/`): its configuration keys
(`config.py`), its Pulumi program (`program.py` and the components beside it), and `target.py`,
a `Target` that the program, the configuration and the `dockyard` command call. Nothing outside
`for_name` asks which orchestrator a stack deploys to. Rendering (manifests or job files written
for GitOps instead of applied) is a mode a target offers, not a target of its own.

Importing this module is cheap: an implementation is imported when it is first asked for, and
imports its resource code and clients only inside the methods that need them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.errors import BadInput, ConfigError

if TYPE_CHECKING:
    from dockyard.app.image_source import ResolvedRelease
    from dockyard.config import AppSettings, ServiceSettings
    from dockyard.release.context import Context
    from dockyard.release.project import Environment
    from dockyard.release.stores.base import ReleaseStore

# dockyard:target -> the package implementing it; the first is the default.
NAMES = ("ecs", "kubernetes", "nomad")
DEFAULT = NAMES[0]


class Target:
    """What dockyard needs from an orchestrator. Defaults are what a target without the feature does."""

    name: str = ""

    # ------------------------------------------------------------------ configuration (pure)

    def check_settings(self, settings: AppSettings) -> None:
        """Checks across keys that only this target makes (raise ConfigError)."""

    def secret_reference(self, path: str, ref: str) -> None:
        """`services.<name>.secrets.<VAR>`: check one reference as this target reads secrets."""
        raise ConfigError(f"dockyard:{path}: the {self.name} target does not read secrets")

    def database(self, raw: Any, share_from: str | None) -> Any:
        """`dockyard:database` for this target (already JSON-decoded); None: no database."""
        if raw is None or raw is False:
            return None
        raise ConfigError(f"dockyard:database: the {self.name} target runs no database of its own; remove it")

    def deployment_keys(self) -> bool:
        """Whether `dockyard:deployment` / `services.<name>.deployment` (ECS strategies) apply."""
        return False

    # ------------------------------------------------------------------ dockyard init

    aws = False  # runs in AWS: its stacks need aws:region, and its images go to ECR unless told otherwise

    def starter_config(self, project: str, env: str) -> tuple[dict[str, Any], str]:
        """What `dockyard init` writes into a new app stack `env` for this target: config keys, and comment
        lines (`# …`) saying where the rest comes from."""
        return {}, ""

    def reach(self) -> str | None:
        """The shell line of init's next steps that points the command at where this target deploys."""
        return None

    # ------------------------------------------------------------------ the Pulumi program

    # The module of its Pulumi program, which the command imports ahead while the engine starts (program_host).
    program_module = ""

    def program(self, settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the dockyard command

    def hidden_environment(self, settings: AppSettings) -> tuple[str, ...]:
        """Environment variables the engine must not see for this stack (a rendering stack must not
        find the user's cluster through $KUBECONFIG)."""
        return ()

    def preflight(self, ctx: Context, env: Environment) -> None:
        """Before anything changes (a release written, the engine's `up`): refuse what would keep the
        deploy or its verification from working, e.g. credentials that cannot be used (raise BadInput)."""

    def verify(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
               outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
        """After the engine's `up`: follow the rollout and prove what runs (each replica's digest, its
        health). Raise VerificationFailed with evidence about the app; anything else for "could not look"."""
        raise NotImplementedError

    def abort(self, ctx: Context, env: Environment, *, reason: str | None, yes: bool) -> Any:
        """Stop an in-flight deployment where the orchestrator can, putting back what served before."""
        raise BadInput(f"{env.name} deploys to {self.name}; abort stops ECS deployments",
                       hint=f"undo a release with: dockyard rollback {env.name}")

    def running(self, env: Environment) -> dict[str, Any]:
        """Extra running state for `status` (merged into the environment's entry); {} if none."""
        return {}

    def refresh_before_up(self, settings: AppSettings) -> bool:
        """Whether the engine reads the real state first: the orchestrator may change what it deployed
        on its own (Nomad's auto_revert), and a stale state would refuse the next update."""
        return False

    def up_failed(self, ctx: Context, env: Environment, store: ReleaseStore | None, version: int | None,
                  error: Exception) -> None:
        """The engine's `up` failed: raise the truer error when the orchestrator can tell what happened
        (a deployment it rolled back, evidence about the app); return to let the engine's error stand."""

    def branch_config(self, ctx: Context, base: Environment, stack: str, config: MutableMapping[str, Any]) -> None:
        """Adjust a branch stack's config (copied from its base) to share the base's infrastructure."""

    def branch_listener_port(self, ctx: Context, base: Environment, stack: str) -> int | None:
        """A port of the base's load balancer for the branch's own listener; None: nothing to route."""
        return None

    def branch_destroyed(self, ctx: Context, env: Environment) -> None:
        """Clean up what the engine's destroy leaves of a branch stack."""


def for_name(name: str) -> Target:
    """The implementation of `dockyard:target` `name` (validated by the configuration)."""
    if name not in NAMES:
        raise ConfigError(f"dockyard:target: got {name!r}; expected one of {', '.join(NAMES)}")
    module = importlib.import_module(f"dockyard.targets.{name}.target")
    return module.TARGET


def of(settings: AppSettings) -> Target:
    return for_name(settings.target)


def routed(services: Mapping[str, ServiceSettings]) -> bool:
    return any(s.routed for s in services.values())
