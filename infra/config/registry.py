"""The registry role's keys: what each service builds from, where images go, what is recorded (pure)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from dockyard.config.keys import BUILDERS, PLATFORMS, REGISTRY_KINDS, all_service_keys
from dockyard.config.services import merged_services
from dockyard.config.settings import BuildSettings, OciRegistry, RegistrySettings
from dockyard.errors import ConfigError, ImageRefError
from dockyard.images import ImageRef, is_digest
from dockyard.validation import (ENV_NAME, boolean, choice, integer, known_keys, mapping, matches, service_name,
                                 string_map, text)

def registry_settings(values: dict[str, Any], stack: str, release_parameter: str,
              discovered: Collection[str]) -> RegistrySettings:
    raw_services = merged_services(values, {name: {} for name in sorted(discovered)})
    if not raw_services:
        raise ConfigError("dockyard:services: no services; add images/<service>/Dockerfile "
                          "or set dockyard:services")
    builds = {}
    for name, raw in raw_services.items():
        service_name(name)
        entry = mapping(f"services.{name}", raw, default={}) or {}
        # One map serves every stack: the registry reads the build keys and leaves the rest to app stacks.
        known_keys(f"services.{name}", entry, all_service_keys())
        context = text(f"services.{name}.context", entry.get("context", f"images/{name}"))
        builder = choice(f"services.{name}.builder", entry.get("builder", "docker"), BUILDERS)
        builds[name] = BuildSettings(
            context=context,
            dockerfile=text(f"services.{name}.dockerfile", entry.get("dockerfile", f"{context}/Dockerfile")),
            platform=choice(f"services.{name}.platform", entry.get("platform", "linux/amd64"), PLATFORMS),
            build_args=string_map(f"services.{name}.buildArgs", entry.get("buildArgs"), ENV_NAME,
                                   "build argument names like COMMIT_SHA"),
            builder=builder,
            packer_template=(text(f"services.{name}.packerTemplate",
                                   entry.get("packerTemplate", f"{context}/{name}.pkr.hcl"))
                             if builder == "packer" else None),
        )
    registry = choice("registry", values.get("registry", "ecr"), REGISTRY_KINDS)
    oci = _oci(values.get("oci"), registry)
    prebuilt = {}
    for name, ref in (mapping("prebuilt", values.get("prebuilt"), default={}) or {}).items():
        if name not in builds:
            raise ConfigError(f"dockyard:prebuilt.{name}: {name!r} is not a service; "
                              f"services: {', '.join(sorted(builds))}")
        prebuilt[name] = _prebuilt_ref(f"prebuilt.{name}", ref, registry)
    if registry == "external":
        missing = sorted(set(builds) - set(prebuilt))
        if missing:
            raise ConfigError(
                f"dockyard:registry is 'external' but dockyard:prebuilt has no image for {', '.join(missing)}; "
                "an external registry needs a pinned image for every service",
                hint=f"pulumi config set --path 'dockyard:prebuilt.{missing[0]}' <registry>/<repo>@sha256:<digest>",
            )
    return RegistrySettings(
        stack=stack,
        services=tuple(sorted(builds)),
        builds=builds,
        prebuilt=prebuilt,
        registry=registry,
        publish=boolean("publish", values.get("publish", True)),
        keep_images=integer("keepImages", values.get("keepImages", 30), 1, 1000),
        untagged_expiry_days=integer("untaggedExpiryDays", values.get("untaggedExpiryDays", 7), 1, 3650),
        release_parameter=release_parameter,
        oci=oci,
    )


_OCI_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$")
_OCI_PREFIX = re.compile(r"^([a-z0-9]+([._-][a-z0-9]+)*)(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def _oci(raw: Any, registry: str) -> OciRegistry | None:
    entry = mapping("oci", raw, default=None)
    if registry != "oci":
        if entry is not None:
            raise ConfigError(f"dockyard:oci applies to dockyard:registry 'oci' only (registry is {registry!r})")
        return None
    if entry is None:
        raise ConfigError("dockyard:registry is 'oci' but dockyard:oci is not set",
                          hint="pulumi config set --path 'dockyard:oci.host' ghcr.io; "
                               "pulumi config set --path 'dockyard:oci.prefix' <org>/dockyard")
    known_keys("oci", entry, ("host", "prefix"))
    if "host" not in entry:
        raise ConfigError("dockyard:oci.host is not set; expected a registry host like ghcr.io or 127.0.0.1:5000")
    host = matches("oci.host", entry["host"], _OCI_HOST, "a registry host like ghcr.io or 127.0.0.1:5000")
    prefix = entry.get("prefix", "dockyard")
    if prefix != "":
        prefix = matches("oci.prefix", prefix, _OCI_PREFIX, "a lowercase repository path like acme/dockyard")
    return OciRegistry(host=host, prefix=prefix)



def _prebuilt_ref(path: str, ref: Any, registry: str) -> str:
    if not isinstance(ref, str):
        raise ConfigError(f"dockyard:{path}: got {ref!r}; expected a pinned image reference")
    if is_digest(ref):
        if registry == "external":
            raise ConfigError(f"dockyard:{path}: got a bare digest {ref}; with dockyard:registry 'external' "
                              "give the whole reference, <registry>/<repo>@sha256:<digest>")
        return ref
    try:
        return str(ImageRef.parse_pinned(ref, what=f"dockyard:{path}"))
    except ImageRefError as err:
        raise ConfigError(err.message if err.message.startswith("dockyard:") else f"dockyard:{path}: {err.message}",
                          hint=err.hint) from None


