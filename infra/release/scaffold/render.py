"""The files `dockyard init` writes: the Pulumi project, its program and the registry/dev/prod stacks (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from dockyard import targets
from dockyard.config.keys import all_service_keys
from dockyard.release.scaffold.discover import FoundService

TARGETS = targets.NAMES
STORES = ("file", "ssm")
REGISTRIES = ("ecr", "oci")
REGISTRY = "registry"
ENVIRONMENTS = ("dev", "prod")
DEFAULT_HEALTH_PATH = "/"


@dataclass(frozen=True)
class Choices:
    """What the files are made of: found in the repository, asked on a terminal, or given as flags."""

    project: str
    target: str
    store: str
    registry: str  # ecr, or oci: any registry at oci_host/oci_prefix
    oci_host: str | None
    oci_prefix: str
    region: str | None  # AWS: ECR, ECS, SSM
    virtualenv: str | None  # where the Python with dockyard installed lives, for the engine
    services: tuple[FoundService, ...]
    trust_key: str | None = None
    # With more than one service on a port: the one that takes the default route (/); the others are
    # routed by path, /<service>/* (dockyard:services.<name>.path).
    default_route: str | None = None


FRONT_NAMES = ("web", "frontend", "front", "ui", "web-ui", "www", "site", "app", "nginx", "proxy", "gateway")


def front_service(services: tuple[FoundService, ...]) -> str | None:
    """The likely front of several services on ports (a name like web or frontend), else the first; None if
    at most one listens."""
    routed = [s.name for s in services if s.port is not None]
    if len(routed) < 2:
        return None
    by_name = [n for front in FRONT_NAMES for n in routed if n == front]
    return (by_name or [n for n in routed if "front" in n or "web" in n] or routed)[0]


def service_entry(service: FoundService, default_route: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The service's `dockyard:services` entry, and what the repository says that no key carries yet."""
    known = set(all_service_keys())
    entry: dict[str, Any] = {"context": service.context}
    if service.dockerfile != f"{service.context}/Dockerfile" or service.context == ".":
        entry["dockerfile"] = service.dockerfile
    if service.port is not None:
        entry["port"] = service.port
        entry["healthCheckPath"] = service.health_path or DEFAULT_HEALTH_PATH
        if default_route is not None and service.name != default_route:
            entry["path"] = f"/{service.name}/*"
    elif service.health_command:
        entry["healthCheckCommand"] = list(service.health_command)
    if service.environment:
        entry["environment"] = dict(sorted(service.environment.items()))
    entry["desiredCount"] = 1
    unmapped = []
    # Keys this version may not know yet: written where the configuration takes them, noted otherwise.
    for key, value in (("user", service.user), ("command", list(service.command) if service.command else None)):
        if value is None:
            continue
        if key in known:
            entry[key] = value
        else:
            unmapped.append(f"{key} {value if isinstance(value, str) else ' '.join(value)}")
    return entry, unmapped


def project_file(choices: Choices) -> str:
    services: dict[str, Any] = {}
    comments = []
    for service in choices.services:
        services[service.name], unmapped = service_entry(service, choices.default_route)
        comments += [f"#   {service.name}: {note} (from {service.source})"
                     for note in unmapped]
    options: dict[str, Any] = {"toolchain": "pip"}
    if choices.virtualenv:
        options["virtualenv"] = choices.virtualenv
    head = {"name": choices.project,
            "description": f"{choices.project}: images built once, promoted by digest (dockyard)",
            "runtime": {"name": "python", "options": options}}
    body = {"config": {"dockyard:services": {"value": services}}}
    return ("# Written by `dockyard init`. The program is dockyard's (__main__.py); this repository is its project.\n"
            + _dump(head)
            + "# One services map for every stack: the registry stack reads the build keys (context,\n"
              "# dockerfile), app stacks the run keys. A stack changes single settings with\n"
              "# dockyard:serviceOverrides (README: Configuration reference).\n"
            + ("# Found but not set (no key for it in this version):\n" + "\n".join(comments) + "\n"
               if comments else "")
            + _dump(body))


def program_file(project: str) -> str:
    return (f'"""{project}: dockyard\'s program, with this repository as its project (no copy of dockyard here)."""\n'
            "\n"
            "from pathlib import Path\n"
            "\n"
            "from dockyard.program import main\n"
            "\n"
            "main(project_dir=Path(__file__).resolve().parent)\n")


def registry_file(choices: Choices) -> str:
    config: dict[str, Any] = {}
    if choices.region:
        config["aws:region"] = choices.region
    config["dockyard:role"] = "registry"
    config["dockyard:registry"] = choices.registry
    if choices.registry == "oci":
        config["dockyard:oci"] = {"host": choices.oci_host, "prefix": choices.oci_prefix}
    # The file store needs no AWS; publishing to SSM does.
    config["dockyard:publish"] = choices.store == "ssm"
    where = (f"{choices.oci_host}/{choices.oci_prefix}/<service>" if choices.registry == "oci"
             else "ECR repositories dockyard/<service>")
    return (f"# The registry stack: one image per service, pushed to {where}.\n"
            "# `dockyard build --local` builds with the local engine and records the pushed digests;\n"
            "# `dockyard build` builds with the program instead.\n" + _dump({"config": config}))


def app_file(choices: Choices, env: str) -> str:
    config: dict[str, Any] = {}
    if choices.region:
        config["aws:region"] = choices.region
    config["dockyard:role"] = "app"
    config["dockyard:target"] = choices.target
    config["dockyard:imageSource"] = choices.store
    if choices.store == "file":
        config["dockyard:releaseDir"] = f".dockyard/releases/{env}"
    else:
        config["dockyard:releaseParameter"] = f"/{choices.project}/{env}/release"
    keys, comment = targets.for_name(choices.target).starter_config(choices.project, env)
    config.update(keys)
    if choices.trust_key:
        config["dockyard:trust"] = {"keys": [choices.trust_key], "require": ["signature"]}
    else:
        config["dockyard:trust"] = "none"
        comment += ("# Trust: none promotes unsigned images. Name who may sign them before this environment\n"
                    "# matters (README: Signed images): dockyard:trust: {keys: [cosign.pub], require: [signature]}\n")
    if env == "prod":
        config["dockyard:serviceOverrides"] = {s.name: {"desiredCount": 2} for s in choices.services}
    source = {"file": f"the release directory .dockyard/releases/{env}",
              "ssm": f"the SSM parameter /{choices.project}/{env}/release"}[choices.store]
    promote = "dockyard promote dev --from registry" if env == "dev" else "dockyard promote prod --from dev"
    return (f"# {env}: runs exactly what `{promote}` wrote to {source}.\n" + comment
            + _dump({"config": config}))


def files(choices: Choices) -> dict[str, str]:
    """File name (relative to the repository) -> content."""
    out = {"Pulumi.yaml": project_file(choices), "__main__.py": program_file(choices.project),
           f"Pulumi.{REGISTRY}.yaml": registry_file(choices)}
    for env in ENVIRONMENTS:
        out[f"Pulumi.{env}.yaml"] = app_file(choices, env)
    return out


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
