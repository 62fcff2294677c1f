"""The app role's keys: which target, where releases come from, what a branch shares (pure)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from dockyard import naming, targets
from dockyard.config.services import check_routing, merged_services, service
from dockyard.config.keys import LOG_RETENTION_DAYS
from dockyard.config.settings import AppSettings
from dockyard.config.trust import parse_trust
from dockyard.errors import ConfigError
from dockyard.targets.ecs import deployment as deployment_settings
from dockyard.targets.ecs.config import network
from dockyard.targets.kubernetes.config import kubernetes
from dockyard.targets.nomad.config import parse as parse_nomad
from dockyard.validation import boolean, choice, decode, integer, mapping, matches, qualified_stack, text

_CERT_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")


def app_settings(values: dict[str, Any], stack: str, release_parameter: str, secrets: set[str],
                 default_registry_stack: str | None) -> AppSettings:
    target_name = choice("target", values.get("target", targets.DEFAULT), targets.NAMES)
    target = targets.for_name(target_name)
    raw_services = merged_services(values, None)
    if not raw_services:
        raise ConfigError("dockyard:services is not set; an app stack names the services it runs",
                          hint="set it once for every stack in Pulumi.yaml (config: dockyard:services: value: …), "
                               "or: pulumi config set --path 'dockyard:services.web.port' 8080")
    services = {name: service(name, raw, target) for name, raw in raw_services.items()}
    env_deployment = deployment_settings.environment(values.get("deployment"), target)
    services = {name: replace(s, deployment=deployment_settings.for_service(
        name, env_deployment, (mapping(f"services.{name}", raw_services[name], default={}) or {}).get("deployment"),
        routed=s.routed, target=target)) for name, s in services.items()}
    check_routing(services)
    image_source = choice("imageSource", values.get("imageSource", "ssm"), ("stack", "ssm", "file"))
    share_from = values.get("shareFrom")
    if share_from is not None:
        share_from = qualified_stack("shareFrom", share_from)
    ephemeral = boolean("ephemeral", values.get("ephemeral", False))
    if ephemeral or share_from:
        # RDS rotates the managed master secret, ECS reads secrets only at task start, and a
        # preview has no business holding the base's master password.
        for s in sorted(services.values(), key=lambda s: s.name):
            if s.database_master:
                raise ConfigError(f"dockyard:services.{s.name}.databaseMaster: got true; branch stacks (ephemeral "
                                  "or shareFrom) never receive the database master secret; remove it (services "
                                  "connect with IAM database authentication as their own user)")
    settings = AppSettings(
        stack=stack,
        services=services,
        target=target_name,
        image_source=image_source,
        release_dir=text("releaseDir", values.get("releaseDir", f".dockyard/releases/{stack}")),
        registry_stack=(qualified_stack("registryStack", values["registryStack"]) if "registryStack" in values
                        else default_registry_stack),
        release_parameter=release_parameter,
        ephemeral=ephemeral,
        share_from=share_from,
        database=target.database(decode("database", values.get("database")), share_from),
        kubernetes=kubernetes(values.get("kubernetes"), "kubernetes" in secrets),
        network=network(values.get("network")),
        log_retention_days=choice("logRetentionDays", integer("logRetentionDays",
                                    values.get("logRetentionDays", 30), 1, 3653), LOG_RETENTION_DAYS),
        certificate_arn=matches("certificateArn", values.get("certificateArn"), _CERT_ARN,
                                "an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>"),
        listener_port=_listener_port(values.get("listenerPort"), share_from),
        nomad=parse_nomad(values.get("nomad"), is_secret="nomad" in secrets),
        trust=parse_trust(decode("trust", values["trust"])) if "trust" in values else None,
    )
    target.check_settings(settings)
    return settings


def _listener_port(value: Any, share_from: str | None) -> int | None:
    """Chosen by `dockyard branch up` among the load balancer's free ports and kept in the stack's config."""
    if value is None:
        return None
    if share_from is None:
        raise ConfigError("dockyard:listenerPort applies to a stack with dockyard:shareFrom: its own listener on "
                          "the base's load balancer")
    return integer("listenerPort", value, naming.BRANCH_PORT_FIRST, naming.BRANCH_PORT_LAST)


