"""`dockyard:services` and `serviceOverrides`: how an app stack runs each service (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard import naming
from dockyard.config.keys import FARGATE_SIZES, PLATFORMS, all_service_keys
from dockyard.config.settings import ServiceSettings
from dockyard.errors import ConfigError
from dockyard.targets import Target
from dockyard.validation import (ENV_NAME, HOSTNAME, HTTP_PATH, boolean, choice, command, fail, integer, known_keys,
                                 mapping, matches, ranges, service_name, string_map)

def merged_services(values: Mapping[str, Any], default: dict[str, Any] | None) -> dict[str, Any] | None:
    """`services` (or `default`) with this stack's `serviceOverrides` merged over it.

    Overrides merge per service and per key; map values (environment, secrets, buildArgs) merge per
    entry; null removes a key. An override names an existing service: it never adds one.
    """
    services = mapping("services", values.get("services"), default=None)
    if services is None:
        services = default
    overrides = mapping("serviceOverrides", values.get("serviceOverrides"), default={}) or {}
    if not overrides:
        return services
    merged = dict(services or {})
    for name, raw in overrides.items():
        path = f"serviceOverrides.{name}"
        if name not in merged:
            raise ConfigError(f"dockyard:{path}: {name!r} is not a service; services: "
                              f"{', '.join(sorted(merged)) or 'none'}")
        entry = mapping(path, raw, default=None)
        if entry is None:
            raise fail(path, raw, "an object of the service's settings to change")
        known_keys(path, entry, all_service_keys())
        result = dict(mapping(f"services.{name}", merged[name], default={}) or {})
        for key, value in entry.items():
            if value is None:
                result.pop(key, None)
            elif isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = {k: v for k, v in {**result[key], **value}.items() if v is not None}
            else:
                result[key] = value
        merged[name] = result
    return merged



def service(name: str, raw: Any, target: Target) -> ServiceSettings:
    service_name(name)
    p = f"services.{name}"
    entry = mapping(p, raw, default={}) or {}
    # One map serves every stack: an app stack reads its keys and leaves the build keys to the registry.
    known_keys(p, entry, all_service_keys())
    cpu = choice(f"{p}.cpu", integer(f"{p}.cpu", entry.get("cpu", 256), 1, 16384), tuple(FARGATE_SIZES))
    memory = integer(f"{p}.memory", entry.get("memory", 512), 1, 122880)
    if memory not in FARGATE_SIZES[cpu]:
        raise ConfigError(f"dockyard:{p}.memory: got {memory} with cpu {cpu}; Fargate accepts "
                          f"{ranges(FARGATE_SIZES[cpu])} MiB for cpu {cpu}")
    desired = integer(f"{p}.desiredCount", entry.get("desiredCount", 2), 0, 1000)
    min_count = integer(f"{p}.minCount", entry.get("minCount", desired), 0, 1000)
    max_count = integer(f"{p}.maxCount", entry.get("maxCount", max(desired, min_count, 1) * 2), 1, 1000)
    if not min_count <= desired <= max_count:
        raise ConfigError(f"dockyard:{p}: minCount {min_count} <= desiredCount {desired} <= maxCount "
                          f"{max_count} does not hold; expected minCount <= desiredCount <= maxCount")
    port = entry.get("port")
    port = None if port is None else integer(f"{p}.port", port, 1, 65535)
    path, host = entry.get("path"), entry.get("host")
    if port is None and (path is not None or host is not None):
        raise ConfigError(f"dockyard:{p}: 'path' and 'host' route traffic to a port; set {p}.port too")
    return ServiceSettings(
        name=name,
        port=port,
        cpu=cpu,
        memory=memory,
        desired_count=desired,
        min_count=min_count,
        max_count=max_count,
        health_check_path=matches(f"{p}.healthCheckPath", entry.get("healthCheckPath", "/healthz"), HTTP_PATH,
                                 "an absolute URL path like /healthz"),
        health_check_command=command(f"{p}.healthCheckCommand", entry.get("healthCheckCommand")),
        path=matches(f"{p}.path", path, HTTP_PATH, "an absolute URL path like /api/*"),
        host=matches(f"{p}.host", host, HOSTNAME, "a lowercase host name like api.example.com"),
        environment=string_map(f"{p}.environment", entry.get("environment"), ENV_NAME,
                                "environment variable names like LOG_LEVEL"),
        secrets=_secret_map(f"{p}.secrets", entry.get("secrets"), target),
        platform=choice(f"{p}.platform", entry.get("platform", "linux/amd64"), PLATFORMS),
        priority=_priority(p, name, entry, port, path, host),
        database_master=boolean(f"{p}.databaseMaster", entry.get("databaseMaster", False)),
    )


def _priority(p: str, name: str, entry: Mapping[str, Any], port: int | None, path: Any, host: Any) -> int | None:
    if entry.get("priority") is None:
        return None
    if port is None:
        raise ConfigError(f"dockyard:{p}.priority: {name} has no port, so no listener rule; remove priority")
    if path is None and host is None:
        raise ConfigError(f"dockyard:{p}.priority: {name} takes the default route, which is always evaluated "
                          f"last ({naming.DEFAULT_ROUTE_PRIORITY}); remove priority")
    return integer(f"{p}.priority", entry["priority"], 1, naming.DEFAULT_ROUTE_PRIORITY - 1)



def check_routing(services: Mapping[str, ServiceSettings]) -> None:
    """At most one routed service may take the default route (neither path nor host)."""
    defaults = sorted(s.name for s in services.values() if s.routed and s.path is None and s.host is None)
    if len(defaults) > 1:
        raise ConfigError(f"dockyard:services: {', '.join(defaults)} all take the default route; "
                          "give all but one a 'path' or 'host'")
    seen: dict[tuple[str | None, str | None], str] = {}
    for s in services.values():
        if s.routed and (s.path or s.host):
            key = (s.host, s.path)
            if key in seen:
                raise ConfigError(f"dockyard:services.{s.name}: same host/path as services.{seen[key]}")
            seen[key] = s.name



def _secret_map(path: str, value: Any, target: Target) -> dict[str, str]:
    """Environment variable -> a reference to a secret, in the form the target reads (an SSM parameter, a
    Kubernetes Secret's key, ...)."""
    entries = string_map(path, value, ENV_NAME, "environment variable names like DATABASE_PASSWORD")
    for key, ref in entries.items():
        target.secret_reference(f"{path}.{key}", ref)
    return entries
