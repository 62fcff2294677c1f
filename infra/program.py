"""The Pulumi program's edge: read `dockyard:` config, validate it, run the stack's role."""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from dockyard import config
from dockyard.errors import DockyardError

PROJECT_DIR = Path(__file__).resolve().parent.parent


def raw_config() -> tuple[dict[str, object], set[str]]:
    """Every config value of this stack and the keys marked secret, as the engine passed them."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return values, secret_keys


def discover_services(images_dir: Path) -> list[str]:
    """One service per `images/<service>/Dockerfile`."""
    if not images_dir.is_dir():
        return []
    return sorted(p.parent.name for p in images_dir.glob("*/Dockerfile"))


def load_settings() -> config.Settings:
    values, secret_keys = raw_config()
    try:
        return config.load(values, stack=pulumi.get_stack(), secret_keys=secret_keys,
                           discovered_services=discover_services(PROJECT_DIR / "images"),
                           organization=pulumi.get_organization(), project=pulumi.get_project())
    except DockyardError as err:
        # RunError stops the program with this one line and no traceback.
        raise pulumi.RunError(str(err)) from None


def main() -> None:
    settings = load_settings()
    if isinstance(settings, config.RegistrySettings):
        from dockyard.registry import run as run_registry

        run_registry(settings, project_dir=PROJECT_DIR)
    else:
        from dockyard.app import run as run_app

        run_app(settings, project_dir=PROJECT_DIR)
