"""Typed, validated settings for each stack role, read once from the `dockyard:` namespace.

Pure: raw config values in (strings, as Pulumi hands them over), frozen
dataclasses out, or one ConfigError naming the key, the bad value and what is
allowed. Nothing here registers a resource or touches AWS.

`load` checks the role and the top-level keys, then hands over to the role's module
(`registry.py`, `app.py`); service keys are in `services.py`, and each target's own keys
beside that target (`infra/targets/<target>/config.py`). The validators they share are
`infra/validation.py`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from dockyard import naming
from dockyard.config.app import app_settings
from dockyard.config.keys import APP_KEYS, COMMON_KEYS, NAMESPACE, REGISTRY_KEYS, SERVICE_KEYS
from dockyard.config.registry import registry_settings
from dockyard.config.settings import (AppSettings, BuildSettings, OciRegistry, RegistrySettings, ServiceSettings,
                                      Settings, rule_priority)
from dockyard.errors import BadInput, ConfigError
from dockyard.targets.ecs.config import DatabaseSettings, NetworkSettings, SharedDatabase
from dockyard.targets.kubernetes.config import KubernetesSettings, SecretDatabaseSettings
from dockyard.validation import ENCRYPTED, choice, decode, parameter

__all__ = ["APP_KEYS", "COMMON_KEYS", "ENCRYPTED", "NAMESPACE", "REGISTRY_KEYS", "SERVICE_KEYS", "AppSettings",
           "BuildSettings", "DatabaseSettings", "KubernetesSettings", "NetworkSettings", "OciRegistry",
           "RegistrySettings", "SecretDatabaseSettings", "ServiceSettings", "Settings", "SharedDatabase", "load",
           "rule_priority"]




def load(
    raw: Mapping[str, Any],
    *,
    stack: str,
    secret_keys: Collection[str] = (),
    discovered_services: Collection[str] = (),
    organization: str | None = None,
    project: str = "dockyard",
) -> Settings:
    """Validate every `dockyard:` key in `raw` (full `dockyard:<key>` names) for `stack`.

    `discovered_services` are the folders of `images/` that hold a Dockerfile:
    the registry's services when `dockyard:services` is not set. `organization`
    is the one the stack lives in, as the engine reports it; without it (the
    command reading stack files) an unset `registryStack` stays None.
    """
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(NAMESPACE + ":")}
    secrets = {k.split(":", 1)[1] for k in secret_keys if k.startswith(NAMESPACE + ":")}
    role = values.get("role")
    if role is None:
        raise ConfigError(
            "dockyard:role is not set; expected 'registry' or 'app'",
            hint="pulumi config set dockyard:role app",
        )
    role = choice("role", role, ("registry", "app"))
    allowed = COMMON_KEYS + (REGISTRY_KEYS if role == "registry" else APP_KEYS)
    for key in sorted(values):
        if key not in allowed:
            other = REGISTRY_KEYS if role == "app" else APP_KEYS
            if key in other:
                raise ConfigError(f"dockyard:{key} applies to role {'registry' if role == 'app' else 'app'}, "
                                  f"not to role {role}")
            raise ConfigError(f"dockyard:{key} is not a dockyard setting; known keys for role {role}: "
                              f"{', '.join(sorted(allowed))}")
    try:
        naming.validate_stack_name(stack)
    except BadInput as err:
        raise ConfigError(err.message) from None
    release_parameter = parameter("releaseParameter", values.get("releaseParameter"), stack)
    try:
        if role == "registry":
            return registry_settings(values, stack, release_parameter, discovered_services)
        registry_stack = None if organization is None else naming.qualified_stack(organization, project, "registry")
        return app_settings(values, stack, release_parameter, secrets, registry_stack)
    except ConfigError as err:
        raise _attributed(err, values) from None


def _attributed(err: ConfigError, values: Mapping[str, Any]) -> ConfigError:
    """Report a bad service value under the key the user wrote: `serviceOverrides.<name>.<key>` when
    this stack's override set it, `services.<name>.<key>` otherwise."""
    match = re.match(r"^dockyard:services\.([a-z0-9-]+)\.([A-Za-z]+)", err.message)
    try:
        overrides = decode("serviceOverrides", values.get("serviceOverrides"))
    except ConfigError:
        return err
    if match and isinstance(overrides, dict) and isinstance(overrides.get(match[1]), dict) \
            and match[2] in overrides[match[1]]:
        return ConfigError("dockyard:serviceOverrides." + err.message[len("dockyard:services."):], hint=err.hint)
    return err


