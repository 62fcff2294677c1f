"""The settings each stack role runs with: frozen dataclasses that `dockyard.config.load` returns (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dockyard import naming
from dockyard.config.trust import TrustPolicy
from dockyard.targets.ecs.config import DatabaseSettings, NetworkSettings, SharedDatabase
from dockyard.targets.ecs.deployment import DeploymentSettings
from dockyard.targets.kubernetes.config import KubernetesSettings, SecretDatabaseSettings
from dockyard.targets.nomad.config import NomadSettings


@dataclass(frozen=True)
class BuildSettings:
    """How the registry stack builds one service's image."""

    context: str
    dockerfile: str
    platform: str
    build_args: Mapping[str, str]
    builder: Literal["docker", "packer"] = "docker"
    packer_template: str | None = None  # builder packer: the template, relative to the project


@dataclass(frozen=True)
class OciRegistry:
    """A registry that is not managed here (GHCR, Harbor, Artifactory, GitLab, distribution):
    images go to `<host>/<prefix>/<service>`."""

    host: str
    prefix: str

    def repository(self, service: str) -> str:
        return f"{self.host}/{self.prefix}/{service}" if self.prefix else f"{self.host}/{service}"


@dataclass(frozen=True)
class ServiceSettings:
    """How an app stack runs one service. `port` is None for a background worker."""

    name: str
    port: int | None
    cpu: int
    memory: int
    desired_count: int
    min_count: int
    max_count: int
    health_check_path: str
    # The container's own health check, exec form; None: an HTTP probe of
    # health_check_path for routed services, none for workers.
    health_check_command: tuple[str, ...] | None
    path: str | None
    host: str | None
    environment: Mapping[str, str]
    secrets: Mapping[str, str]
    platform: str = "linux/amd64"  # the image's platform: where its tasks and pods may run
    priority: int | None = None  # ECS: an explicit listener rule priority; None: derived from the name
    # ECS: receives the RDS master credentials; otherwise it connects with IAM auth as its own user
    database_master: bool = False
    # ECS: how a deployment replaces its tasks (the environment's dockyard:deployment, then its own keys)
    deployment: DeploymentSettings = DeploymentSettings()

    @property
    def routed(self) -> bool:
        return self.port is not None

    @property
    def default_route(self) -> bool:
        return self.routed and self.path is None and self.host is None


def rule_priority(service: ServiceSettings) -> int:
    """ECS: the service's listener rule priority; stable while the service exists."""
    if service.default_route:
        return naming.DEFAULT_ROUTE_PRIORITY
    return service.priority if service.priority is not None else naming.listener_priority(service.name)


@dataclass(frozen=True)
class RegistrySettings:
    stack: str
    services: tuple[str, ...]
    builds: Mapping[str, BuildSettings]
    prebuilt: Mapping[str, str]  # service -> pinned reference, or a bare sha256 digest in ecr mode
    registry: Literal["ecr", "oci", "external"]
    publish: bool
    keep_images: int
    untagged_expiry_days: int
    release_parameter: str
    role: Literal["registry"] = "registry"
    oci: OciRegistry | None = None  # registry 'oci': where images are pushed


@dataclass(frozen=True)
class AppSettings:
    stack: str
    services: Mapping[str, ServiceSettings]
    target: Literal["ecs", "kubernetes", "nomad"]
    image_source: Literal["stack", "ssm", "file"]
    release_dir: str
    registry_stack: str | None  # None: not set, and the organization was not known to the caller
    release_parameter: str
    ephemeral: bool
    share_from: str | None
    database: DatabaseSettings | SecretDatabaseSettings | SharedDatabase | None
    kubernetes: KubernetesSettings
    network: NetworkSettings
    log_retention_days: int
    certificate_arn: str | None
    listener_port: int | None = None  # ECS branch stack: its listener's port on the base's load balancer
    nomad: NomadSettings = NomadSettings()  # target nomad: the cluster and namespace of the job
    trust: TrustPolicy | None = None  # dockyard:trust; None: not set (promotions refuse until it is)
    role: Literal["app"] = "app"


Settings = RegistrySettings | AppSettings


