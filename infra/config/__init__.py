"""Typed, validated settings for each stack role, read once from the `dockyard:` namespace.

Pure: raw config values in (strings, as Pulumi hands them over), frozen
dataclasses out, or one ConfigError naming the key, the bad value and what is
allowed. Nothing here registers a resource or touches AWS.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal, TypeVar

from infra.targets.ecs import deployment as deployment_settings
from infra import naming
from infra.targets.ecs.deployment import DeploymentSettings
from infra.errors import BadInput, ConfigError, ImageRefError
from infra.images import ImageRef, is_digest
from infra.targets.nomad.config import NomadSettings
from infra.targets.nomad.config import parse as parse_nomad
from infra.config.notify import NotifySettings, parse_notify
from infra.config.spans import duration_setting
from infra.config.trust import TrustPolicy, parse_trust
from infra.config.windows import Windows, parse_windows

NAMESPACE = "dockyard"
# The `dockyard` command reads stack files without decrypting them: a secret value
# arrives as this sentinel, and text checks accept it (the engine checks the real value).
ENCRYPTED = "[secret]"

# Fargate task sizes AWS accepts: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)
PLATFORMS = ("linux/amd64", "linux/arm64")

# `services` is meant for the project level (Pulumi.yaml), one map for every stack; a stack changes
# single settings with `serviceOverrides` (the engine would replace the whole map otherwise).
COMMON_KEYS = ("role", "services", "serviceOverrides", "releaseParameter")
REGISTRY_KEYS = ("prebuilt", "registry", "oci", "publish", "keepImages", "untaggedExpiryDays")
APP_KEYS = ("target", "imageSource", "releaseDir", "registryStack", "ephemeral", "shareFrom",
            "database", "kubernetes", "network", "logRetentionDays", "certificateArn", "listenerPort",
            "deployment", "trust", "nomad", "windows", "notify", "soak")
SERVICE_KEYS = ("port", "cpu", "memory", "desiredCount", "minCount", "maxCount",
                "healthCheckPath", "healthCheckCommand", "path", "host", "environment", "secrets", "platform",
                "priority", "databaseMaster", "deployment")
BUILD_KEYS = ("context", "dockerfile", "platform", "buildArgs", "builder", "packerTemplate")
BUILDERS = ("docker", "packer")
REGISTRY_KINDS = ("ecr", "oci", "external")
DATABASE_KEYS = ("instanceClass", "allocatedStorage", "engineVersion", "name", "multiAz",
                 "backupRetentionDays")
KUBERNETES_KEYS = ("namespace", "createNamespace", "kubeconfig", "context", "renderDir",
                   "ingressClass", "ingressNamespace", "ingressFrom", "host", "tlsSecret")
NETWORK_KEYS = ("vpcId", "publicSubnetIds", "privateSubnetIds", "cidr", "availabilityZones",
                "natGateways")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_QUALIFIED_STACK = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SECRET_REF = re.compile(r"^(/[a-zA-Z0-9_.\-/]+|arn:aws[a-z-]*:(ssm|secretsmanager):[a-z0-9-]+:\d{12}:\S+)$")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_K8S_SECRET_REF = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/[-._a-zA-Z0-9]+$")
_CERT_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_CIDR = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-8])$")
_DB_INSTANCE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


# ----------------------------------------------------------------------------- settings


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
class DatabaseSettings:
    """ECS: the shared RDS PostgreSQL instance."""

    instance_class: str = "db.t4g.micro"
    allocated_storage: int = 20
    engine_version: str = "16"
    name: str = "app"
    multi_az: bool = False
    backup_retention_days: int = 7


@dataclass(frozen=True)
class SecretDatabaseSettings:
    """Kubernetes: an existing Secret holding the connection settings."""

    secret_name: str
    # What a branch stack's pods get instead: never the base's own (master) credentials. None: a
    # branch runs without a database secret.
    branch_secret_name: str | None = None


@dataclass(frozen=True)
class SharedDatabase:
    """A `shareFrom` stack: use the base stack's database, if it has one."""


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str = "dockyard"
    create_namespace: bool = True
    kubeconfig: str | None = None  # secret: only ever handed to pulumi as a secret Output
    context: str | None = None
    render_dir: str | None = None
    ingress_class: str | None = None
    ingress_namespace: str = "ingress-nginx"  # where the ingress controller runs: the only outside caller
    # NetworkPolicy peers that may reach routed services (besides the stack's own pods): by
    # default the ingress namespace; ipBlocks for controllers on the host network.
    ingress_from: tuple[Mapping[str, Any], ...] = ()
    host: str | None = None
    tls_secret: str | None = None


@dataclass(frozen=True)
class NetworkSettings:
    """Either an existing VPC (vpc_id and subnets) or a new one (cidr, zones, NAT gateways)."""

    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()
    cidr: str = "10.0.0.0/16"
    availability_zones: int = 2
    nat_gateways: int = 1

    @property
    def existing(self) -> bool:
        return self.vpc_id is not None


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
    windows: Windows | None = None  # dockyard:windows: when promotions may happen
    notify: NotifySettings | None = None  # dockyard:notify: webhooks told about promotions and rollbacks
    soak: timedelta | None = None  # dockyard:soak: how long a release runs verified upstream before --auto
    role: Literal["app"] = "app"


Settings = RegistrySettings | AppSettings


# ----------------------------------------------------------------------------- entry point


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
    role = _choice("role", role, ("registry", "app"))
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
    release_parameter = _parameter("releaseParameter", values.get("releaseParameter"), stack)
    try:
        if role == "registry":
            return _registry(values, stack, release_parameter, discovered_services)
        registry_stack = None if organization is None else naming.qualified_stack(organization, project, "registry")
        return _app(values, stack, release_parameter, secrets, registry_stack)
    except ConfigError as err:
        raise _attributed(err, values) from None


# ----------------------------------------------------------------------------- registry


def _registry(values: dict[str, Any], stack: str, release_parameter: str,
              discovered: Collection[str]) -> RegistrySettings:
    raw_services = _merged_services(values, {name: {} for name in sorted(discovered)})
    if not raw_services:
        raise ConfigError("dockyard:services: no services; add images/<service>/Dockerfile "
                          "or set dockyard:services")
    builds = {}
    for name, raw in raw_services.items():
        _service_name(name)
        entry = _object(f"services.{name}", raw, default={}) or {}
        # One map serves every stack: the registry reads the build keys and leaves the rest to app stacks.
        _known_keys(f"services.{name}", entry, _all_service_keys())
        context = _text(f"services.{name}.context", entry.get("context", f"images/{name}"))
        builder = _choice(f"services.{name}.builder", entry.get("builder", "docker"), BUILDERS)
        builds[name] = BuildSettings(
            context=context,
            dockerfile=_text(f"services.{name}.dockerfile", entry.get("dockerfile", f"{context}/Dockerfile")),
            platform=_choice(f"services.{name}.platform", entry.get("platform", "linux/amd64"), PLATFORMS),
            build_args=_string_map(f"services.{name}.buildArgs", entry.get("buildArgs"), _ENV_NAME,
                                   "build argument names like COMMIT_SHA"),
            builder=builder,
            packer_template=(_text(f"services.{name}.packerTemplate",
                                   entry.get("packerTemplate", f"{context}/{name}.pkr.hcl"))
                             if builder == "packer" else None),
        )
    registry = _choice("registry", values.get("registry", "ecr"), REGISTRY_KINDS)
    oci = _oci(values.get("oci"), registry)
    prebuilt = {}
    for name, ref in (_object("prebuilt", values.get("prebuilt"), default={}) or {}).items():
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
        publish=_bool("publish", values.get("publish", True)),
        keep_images=_int("keepImages", values.get("keepImages", 30), 1, 1000),
        untagged_expiry_days=_int("untaggedExpiryDays", values.get("untaggedExpiryDays", 7), 1, 3650),
        release_parameter=release_parameter,
        oci=oci,
    )


_OCI_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$")
_OCI_PREFIX = re.compile(r"^([a-z0-9]+([._-][a-z0-9]+)*)(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def _oci(raw: Any, registry: str) -> OciRegistry | None:
    entry = _object("oci", raw, default=None)
    if registry != "oci":
        if entry is not None:
            raise ConfigError(f"dockyard:oci applies to dockyard:registry 'oci' only (registry is {registry!r})")
        return None
    if entry is None:
        raise ConfigError("dockyard:registry is 'oci' but dockyard:oci is not set",
                          hint="pulumi config set --path 'dockyard:oci.host' ghcr.io; "
                               "pulumi config set --path 'dockyard:oci.prefix' <org>/dockyard")
    _known_keys("oci", entry, ("host", "prefix"))
    if "host" not in entry:
        raise ConfigError("dockyard:oci.host is not set; expected a registry host like ghcr.io or 127.0.0.1:5000")
    host = _match("oci.host", entry["host"], _OCI_HOST, "a registry host like ghcr.io or 127.0.0.1:5000")
    prefix = entry.get("prefix", "dockyard")
    if prefix != "":
        prefix = _match("oci.prefix", prefix, _OCI_PREFIX, "a lowercase repository path like acme/dockyard")
    return OciRegistry(host=host, prefix=prefix)


def _all_service_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(SERVICE_KEYS + BUILD_KEYS))


def _merged_services(values: Mapping[str, Any], default: dict[str, Any] | None) -> dict[str, Any] | None:
    """`services` (or `default`) with this stack's `serviceOverrides` merged over it.

    Overrides merge per service and per key; map values (environment, secrets, buildArgs) merge per
    entry; null removes a key. An override names an existing service: it never adds one.
    """
    services = _object("services", values.get("services"), default=None)
    if services is None:
        services = default
    overrides = _object("serviceOverrides", values.get("serviceOverrides"), default={}) or {}
    if not overrides:
        return services
    merged = dict(services or {})
    for name, raw in overrides.items():
        path = f"serviceOverrides.{name}"
        if name not in merged:
            raise ConfigError(f"dockyard:{path}: {name!r} is not a service; services: "
                              f"{', '.join(sorted(merged)) or 'none'}")
        entry = _object(path, raw, default=None)
        if entry is None:
            raise _fail(path, raw, "an object of the service's settings to change")
        _known_keys(path, entry, _all_service_keys())
        result = dict(_object(f"services.{name}", merged[name], default={}) or {})
        for key, value in entry.items():
            if value is None:
                result.pop(key, None)
            elif isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = {k: v for k, v in {**result[key], **value}.items() if v is not None}
            else:
                result[key] = value
        merged[name] = result
    return merged


def _attributed(err: ConfigError, values: Mapping[str, Any]) -> ConfigError:
    """Report a bad service value under the key the user wrote: `serviceOverrides.<name>.<key>` when
    this stack's override set it, `services.<name>.<key>` otherwise."""
    match = re.match(r"^dockyard:services\.([a-z0-9-]+)\.([A-Za-z]+)", err.message)
    try:
        overrides = _json("serviceOverrides", values.get("serviceOverrides"))
    except ConfigError:
        return err
    if match and isinstance(overrides, dict) and isinstance(overrides.get(match[1]), dict) \
            and match[2] in overrides[match[1]]:
        return ConfigError("dockyard:serviceOverrides." + err.message[len("dockyard:services."):], hint=err.hint)
    return err


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


# ----------------------------------------------------------------------------- app


def _app(values: dict[str, Any], stack: str, release_parameter: str, secrets: set[str],
         default_registry_stack: str | None) -> AppSettings:
    target = _choice("target", values.get("target", "ecs"), ("ecs", "kubernetes", "nomad"))
    raw_services = _merged_services(values, None)
    if not raw_services:
        raise ConfigError("dockyard:services is not set; an app stack names the services it runs",
                          hint="set it once for every stack in Pulumi.yaml (config: dockyard:services: value: …), "
                               "or: pulumi config set --path 'dockyard:services.web.port' 8080")
    services = {name: _service(name, raw, target) for name, raw in raw_services.items()}
    env_deployment = deployment_settings.environment(values.get("deployment"), target)
    services = {name: replace(s, deployment=deployment_settings.for_service(
        name, env_deployment, (_object(f"services.{name}", raw_services[name], default={}) or {}).get("deployment"),
        routed=s.routed, target=target)) for name, s in services.items()}
    _check_routing(services)
    if target == "ecs":
        _check_priorities(services)
    image_source = _choice("imageSource", values.get("imageSource", "ssm"), ("stack", "ssm", "file"))
    share_from = values.get("shareFrom")
    if share_from is not None:
        share_from = _qualified_stack("shareFrom", share_from)
    ephemeral = _bool("ephemeral", values.get("ephemeral", False))
    if ephemeral or share_from:
        # RDS rotates the managed master secret, ECS reads secrets only at task start, and a
        # preview has no business holding the base's master password.
        for s in sorted(services.values(), key=lambda s: s.name):
            if s.database_master:
                raise ConfigError(f"dockyard:services.{s.name}.databaseMaster: got true; branch stacks (ephemeral "
                                  "or shareFrom) never receive the database master secret; remove it (services "
                                  "connect with IAM database authentication as their own user)")
    kubernetes = _kubernetes(values.get("kubernetes"), "kubernetes" in secrets)
    if target == "kubernetes" and naming.is_branch_stack(stack) and kubernetes.host is None:
        hostless = sorted(s.name for s in services.values() if s.routed and s.host is None)
        if hostless:
            raise ConfigError(
                f"dockyard:kubernetes.host: a branch stack's Ingress needs a host, or {', '.join(hostless)} "
                "would take the base's routes; set kubernetes.host on the base (a branch serves "
                f"{stack}.<host>, so a wildcard DNS record *.<host> serves every branch)")
    return AppSettings(
        stack=stack,
        services=services,
        target=target,
        image_source=image_source,
        release_dir=_text("releaseDir", values.get("releaseDir", f".dockyard/releases/{stack}")),
        registry_stack=(_qualified_stack("registryStack", values["registryStack"]) if "registryStack" in values
                        else default_registry_stack),
        release_parameter=release_parameter,
        ephemeral=ephemeral,
        share_from=share_from,
        database=_database(values.get("database", None), target, share_from),
        kubernetes=kubernetes,
        network=_network(values.get("network")),
        log_retention_days=_choice("logRetentionDays", _int("logRetentionDays",
                                   values.get("logRetentionDays", 30), 1, 3653), LOG_RETENTION_DAYS),
        certificate_arn=_match("certificateArn", values.get("certificateArn"), _CERT_ARN,
                               "an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>"),
        listener_port=_listener_port(values.get("listenerPort"), share_from),
        nomad=parse_nomad(values.get("nomad"), is_secret="nomad" in secrets),
        trust=parse_trust(_json("trust", values["trust"])) if "trust" in values else None,
        windows=parse_windows(_json("windows", values.get("windows"))),
        notify=parse_notify(_json("notify", values.get("notify")), is_secret="notify" in secrets),
        soak=duration_setting("soak", values.get("soak")),
    )


def _listener_port(value: Any, share_from: str | None) -> int | None:
    """Chosen by `dockyard branch up` among the load balancer's free ports and kept in the stack's config."""
    if value is None:
        return None
    if share_from is None:
        raise ConfigError("dockyard:listenerPort applies to a stack with dockyard:shareFrom: its own listener on "
                          "the base's load balancer")
    return _int("listenerPort", value, naming.BRANCH_PORT_FIRST, naming.BRANCH_PORT_LAST)


def _service(name: str, raw: Any, target: str) -> ServiceSettings:
    _service_name(name)
    p = f"services.{name}"
    entry = _object(p, raw, default={}) or {}
    # One map serves every stack: an app stack reads its keys and leaves the build keys to the registry.
    _known_keys(p, entry, _all_service_keys())
    cpu = _choice(f"{p}.cpu", _int(f"{p}.cpu", entry.get("cpu", 256), 1, 16384), tuple(FARGATE_SIZES))
    memory = _int(f"{p}.memory", entry.get("memory", 512), 1, 122880)
    if memory not in FARGATE_SIZES[cpu]:
        raise ConfigError(f"dockyard:{p}.memory: got {memory} with cpu {cpu}; Fargate accepts "
                          f"{_ranges(FARGATE_SIZES[cpu])} MiB for cpu {cpu}")
    desired = _int(f"{p}.desiredCount", entry.get("desiredCount", 2), 0, 1000)
    min_count = _int(f"{p}.minCount", entry.get("minCount", desired), 0, 1000)
    max_count = _int(f"{p}.maxCount", entry.get("maxCount", max(desired, min_count, 1) * 2), 1, 1000)
    if not min_count <= desired <= max_count:
        raise ConfigError(f"dockyard:{p}: minCount {min_count} <= desiredCount {desired} <= maxCount "
                          f"{max_count} does not hold; expected minCount <= desiredCount <= maxCount")
    port = entry.get("port")
    port = None if port is None else _int(f"{p}.port", port, 1, 65535)
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
        health_check_path=_match(f"{p}.healthCheckPath", entry.get("healthCheckPath", "/healthz"), _HTTP_PATH,
                                 "an absolute URL path like /healthz"),
        health_check_command=_command(f"{p}.healthCheckCommand", entry.get("healthCheckCommand")),
        path=_match(f"{p}.path", path, _HTTP_PATH, "an absolute URL path like /api/*"),
        host=_match(f"{p}.host", host, _HOSTNAME, "a lowercase host name like api.example.com"),
        environment=_string_map(f"{p}.environment", entry.get("environment"), _ENV_NAME,
                                "environment variable names like LOG_LEVEL"),
        secrets=_secret_map(f"{p}.secrets", entry.get("secrets"), target),
        platform=_choice(f"{p}.platform", entry.get("platform", "linux/amd64"), PLATFORMS),
        priority=_priority(p, name, entry, port, path, host),
        database_master=_bool(f"{p}.databaseMaster", entry.get("databaseMaster", False)),
    )


def _priority(p: str, name: str, entry: Mapping[str, Any], port: int | None, path: Any, host: Any) -> int | None:
    if entry.get("priority") is None:
        return None
    if port is None:
        raise ConfigError(f"dockyard:{p}.priority: {name} has no port, so no listener rule; remove priority")
    if path is None and host is None:
        raise ConfigError(f"dockyard:{p}.priority: {name} takes the default route, which is always evaluated "
                          f"last ({naming.DEFAULT_ROUTE_PRIORITY}); remove priority")
    return _int(f"{p}.priority", entry["priority"], 1, naming.DEFAULT_ROUTE_PRIORITY - 1)


def _check_priorities(services: Mapping[str, ServiceSettings]) -> None:
    """Two rules on one listener never share a priority (AWS refuses the second)."""
    taken: dict[int, str] = {}
    for s in sorted(services.values(), key=lambda s: s.name):
        if not s.routed:
            continue
        priority = rule_priority(s)
        if priority in taken:
            raise ConfigError(f"dockyard:services.{s.name}.priority: listener rule priority {priority} is also "
                              f"services.{taken[priority]}'s; set dockyard:services.{s.name}.priority to a free "
                              f"value from 1 to {naming.DEFAULT_ROUTE_PRIORITY - 1}")
        taken[priority] = s.name


def _check_routing(services: Mapping[str, ServiceSettings]) -> None:
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


def _database(raw: Any, target: str,
              share_from: str | None) -> DatabaseSettings | SecretDatabaseSettings | SharedDatabase | None:
    value = _json("database", raw)
    if value is False or value is None and target in ("kubernetes", "nomad"):
        return None
    if target == "nomad":
        raise ConfigError("dockyard:database: the nomad target runs no database of its own; remove it and give "
                          "the services their connection settings in environment")
    if value is None and share_from:
        return SharedDatabase()
    if target == "kubernetes":
        entry = _object("database", value, default=None)
        _known_keys("database", entry, ("secretName", "branchSecretName"))
        secret = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
        return SecretDatabaseSettings(
            secret_name=_match("database.secretName", entry.get("secretName"), secret,
                               "the name of an existing Kubernetes Secret"),
            branch_secret_name=_match("database.branchSecretName", entry.get("branchSecretName"), secret,
                                      "the name of an existing Kubernetes Secret in the base's namespace"))
    if share_from:
        raise ConfigError("dockyard:database: a stack with dockyard:shareFrom uses its base's database; "
                          "remove dockyard:database, or set it to false to run without one")
    if value is None or value is True:
        return DatabaseSettings()
    entry = _object("database", value, default=None)
    _known_keys("database", entry, DATABASE_KEYS)
    defaults = DatabaseSettings()
    return DatabaseSettings(
        instance_class=_match("database.instanceClass", entry.get("instanceClass", defaults.instance_class),
                              _DB_INSTANCE, "an RDS instance class like db.t4g.micro"),
        allocated_storage=_int("database.allocatedStorage", entry.get("allocatedStorage", 20), 20, 65536),
        engine_version=_match("database.engineVersion", str(entry.get("engineVersion", defaults.engine_version)),
                              re.compile(r"^1[3-9](\.\d+)?$"), "a PostgreSQL version 13 or later, like 16 or 16.4"),
        name=_match("database.name", entry.get("name", defaults.name), _DB_NAME,
                    "a database name: a letter, then letters, digits or '_', at most 63"),
        multi_az=_bool("database.multiAz", entry.get("multiAz", False)),
        backup_retention_days=_int("database.backupRetentionDays", entry.get("backupRetentionDays", 7), 7, 35),
    )


def _kubernetes(raw: Any, is_secret: bool) -> KubernetesSettings:
    entry = _object("kubernetes", raw, default={}) or {}
    _known_keys("kubernetes", entry, KUBERNETES_KEYS)
    kubeconfig = entry.get("kubeconfig")
    if kubeconfig is not None:
        if not is_secret:
            raise ConfigError("dockyard:kubernetes.kubeconfig is stored in plain text; it holds credentials",
                              hint="pulumi config set --secret --path 'dockyard:kubernetes.kubeconfig' "
                                   "\"$(cat ~/.kube/config)\"")
        kubeconfig = _text("kubernetes.kubeconfig", kubeconfig)
    render_dir = entry.get("renderDir")
    if render_dir is not None and kubeconfig is not None:
        raise ConfigError("dockyard:kubernetes: set either kubeconfig (deploy to a cluster) or renderDir "
                          "(write manifests for GitOps), not both")
    if "ingressFrom" in entry and "ingressNamespace" in entry:
        raise ConfigError("dockyard:kubernetes: set either ingressNamespace or ingressFrom (which replaces it), "
                          "not both")
    ingress_namespace = _match("kubernetes.ingressNamespace", entry.get("ingressNamespace", "ingress-nginx"),
                               re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "a namespace name")
    ingress_from = (_ingress_from(entry["ingressFrom"]) if "ingressFrom" in entry else
                    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}}},))
    namespace = _match("kubernetes.namespace", entry.get("namespace", "dockyard"),
                       re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "a DNS label, at most 63 characters")
    return KubernetesSettings(
        namespace=namespace,
        create_namespace=_bool("kubernetes.createNamespace", entry.get("createNamespace", True)),
        kubeconfig=kubeconfig,
        context=None if entry.get("context") is None else _text("kubernetes.context", entry["context"]),
        render_dir=None if render_dir is None else _text("kubernetes.renderDir", render_dir),
        ingress_class=_match("kubernetes.ingressClass", entry.get("ingressClass"),
                             re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"), "an IngressClass name like nginx"),
        ingress_namespace=ingress_namespace,
        ingress_from=ingress_from,
        host=_match("kubernetes.host", entry.get("host"), _HOSTNAME, "a lowercase host name like app.example.com"),
        tls_secret=_match("kubernetes.tlsSecret", entry.get("tlsSecret"),
                          re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"), "the name of a TLS Secret"),
    )


def _ingress_from(raw: Any) -> tuple[dict[str, Any], ...]:
    """NetworkPolicy peers, as Kubernetes spells them: an ipBlock, or a namespace and/or pod selector."""
    path = "kubernetes.ingressFrom"
    value = _json(path, raw)
    if not isinstance(value, list) or not value:
        raise _fail(path, value, "a list of peers, each {ipBlock: {cidr: ...}} or "
                                 "{namespaceSelector: {matchLabels: ...}} and/or {podSelector: ...}")
    peers = []
    for i, peer in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(peer, dict):
            raise _fail(p, peer, "an object with ipBlock, or namespaceSelector and/or podSelector")
        _known_keys(p, peer, ("ipBlock", "namespaceSelector", "podSelector"))
        if not peer:
            raise _fail(p, peer, "one of ipBlock, namespaceSelector, podSelector")
        if "ipBlock" in peer:
            if len(peer) > 1:
                raise ConfigError(f"dockyard:{p}: ipBlock cannot be combined with namespaceSelector or podSelector")
            peers.append({"ipBlock": _ip_block(f"{p}.ipBlock", peer["ipBlock"])})
        else:
            peers.append({kind: _selector(f"{p}.{kind}", selector) for kind, selector in peer.items()})
    return tuple(peers)


def _cidr(path: str, value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        return ipaddress.ip_network(value)
    except ValueError:
        raise _fail(path, value, "a CIDR like 10.0.0.0/16 or fd00::/8") from None


def _ip_block(path: str, raw: Any) -> dict[str, Any]:
    block = _object(path, raw, default=None)
    if block is None:
        raise _fail(path, raw, "an object with cidr and optionally except")
    _known_keys(path, block, ("cidr", "except"))
    network = _cidr(f"{path}.cidr", block.get("cidr"))
    result: dict[str, Any] = {"cidr": str(network)}
    if "except" in block:
        excepted = block["except"]
        if not isinstance(excepted, list):
            raise _fail(f"{path}.except", excepted, f"a list of CIDRs inside {network}")
        for j, item in enumerate(excepted):
            inner = _cidr(f"{path}.except[{j}]", item)
            if inner.version != network.version or not inner.subnet_of(network):  # type: ignore[arg-type]
                raise _fail(f"{path}.except[{j}]", item, f"a CIDR inside {network}")
        result["except"] = [str(_cidr(path, item)) for item in excepted]
    return result


def _selector(path: str, raw: Any) -> dict[str, Any]:
    """A label selector by matchLabels; `{}` selects everything (every namespace, every pod)."""
    selector = _object(path, raw, default=None)
    if selector is None:
        raise _fail(path, raw, "an object like {matchLabels: {team: edge}}")
    _known_keys(path, selector, ("matchLabels",))
    if "matchLabels" not in selector:
        return {}
    labels = _object(f"{path}.matchLabels", selector["matchLabels"], default={}) or {}
    for key, label in labels.items():
        if not _LABEL_KEY.match(key):
            raise _fail(f"{path}.matchLabels.{key}", key, "a label key like team or kubernetes.io/metadata.name")
        if not isinstance(label, str) or not _LABEL_VALUE.match(label):
            raise _fail(f"{path}.matchLabels.{key}", label,
                        "a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending "
                        "with a letter or digit")
    return {"matchLabels": dict(labels)}


# EC2 refuses subnets smaller than /28.
MIN_SUBNET_PREFIX = 28


def _vpc_cidr(value: Any, zones: int) -> str:
    """A public and a private subnet per zone, split evenly (2 x zones rounded up to a power of two)."""
    cidr = _match("network.cidr", value, _CIDR, "an IPv4 CIDR from /16 to /28")
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        raise _fail("network.cidr", cidr, "a network address (host bits zero), like 10.0.0.0/16") from None
    blocks = 2 * zones
    longest = MIN_SUBNET_PREFIX - (blocks - 1).bit_length()
    if network.prefixlen > longest:
        raise ConfigError(f"dockyard:network.cidr: got {cidr!r}; {zones} zones need {blocks} subnets of at least "
                          f"/{MIN_SUBNET_PREFIX}: expected a prefix from /16 to /{longest}")
    return cidr


def _network(raw: Any) -> NetworkSettings:
    entry = _object("network", raw, default={}) or {}
    _known_keys("network", entry, NETWORK_KEYS)
    vpc_id = _match("network.vpcId", entry.get("vpcId"), _VPC_ID, "a VPC id like vpc-0123abcd")
    if vpc_id is None:
        stray = sorted(k for k in ("publicSubnetIds", "privateSubnetIds") if k in entry)
        if stray:
            raise ConfigError(f"dockyard:network.{stray[0]} needs dockyard:network.vpcId, the VPC the subnets are in")
        zones = _int("network.availabilityZones", entry.get("availabilityZones", 2), 2, 6)
        return NetworkSettings(
            cidr=_vpc_cidr(entry.get("cidr", "10.0.0.0/16"), zones),
            availability_zones=zones,
            # Tasks run in private subnets: without a NAT gateway they cannot pull images, write logs or read
            # secrets. A VPC that reaches AWS through endpoints instead is an existing one (vpcId).
            nat_gateways=_int("network.natGateways", entry.get("natGateways", 1), 1, 6),
        )
    for key in ("cidr", "availabilityZones", "natGateways"):
        if key in entry:
            raise ConfigError(f"dockyard:network.{key} describes a new VPC; it cannot be combined with vpcId")

    def subnets(key: str) -> tuple[str, ...]:
        value = entry.get(key)
        if not isinstance(value, list) or len(value) < 2:
            raise ConfigError(f"dockyard:network.{key}: got {value!r}; expected a list of two or more subnet ids "
                              "in different availability zones")
        return tuple(_match(f"network.{key}", s, _SUBNET_ID, "a subnet id like subnet-0123abcd") for s in value)

    return NetworkSettings(vpc_id=vpc_id, public_subnet_ids=subnets("publicSubnetIds"),
                           private_subnet_ids=subnets("privateSubnetIds"))


# ----------------------------------------------------------------------------- value helpers

T = TypeVar("T")


def _fail(path: str, value: Any, expected: str) -> ConfigError:
    shown = value if isinstance(value, (int, float, bool)) else repr(value)
    if isinstance(shown, str) and len(shown) > 80:
        shown = shown[:77] + "..."
    return ConfigError(f"dockyard:{path}: got {shown}; expected {expected}")


def _json(path: str, value: Any) -> Any:
    """Pulumi hands object values over as JSON text, and scalars as strings."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null"):
            try:
                return json.loads(stripped)
            except ValueError:
                raise _fail(path, value, "valid JSON") from None
    return value


def _object(path: str, value: Any, *, default: Any) -> Any:
    value = _json(path, value)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise _fail(path, value, "an object (set it with pulumi config set --path)")
    return value


def _known_keys(path: str, entry: Mapping[str, Any], known: tuple[str, ...],
                others: tuple[tuple[str, ...], str] | None = None) -> None:
    for key in entry:
        if key in known:
            continue
        if others and key in others[0]:
            raise ConfigError(f"dockyard:{path}.{key} applies to role {others[1]} only")
        raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(known)}")


def _service_name(name: str) -> str:
    try:
        return naming.validate_service_name(name)
    except BadInput as err:
        raise ConfigError(f"dockyard:services: {err.message}") from None


def _text(path: str, value: Any) -> str:
    if value == ENCRYPTED:
        return value
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, value, "a non-empty string")
    return value


def _choice(path: str, value: Any, allowed: tuple[T, ...]) -> T:
    if value not in allowed or isinstance(value, bool):
        raise _fail(path, value, "one of " + ", ".join(str(a) for a in allowed))
    return value


def _bool(path: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(path, value, "true or false")


def _int(path: str, value: Any, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        number = int(value)
    if number is None or not low <= number <= high:
        raise _fail(path, value, f"a whole number from {low} to {high}")
    return number


def _match(path: str, value: Any, pattern: re.Pattern[str], expected: str) -> Any:
    if value is None or value == ENCRYPTED:
        return value
    if not isinstance(value, str) or not pattern.match(value):
        raise _fail(path, value, expected)
    return value


def _string_map(path: str, value: Any, key_pattern: re.Pattern[str], keys: str) -> dict[str, str]:
    entry = _object(path, value, default={}) or {}
    result = {}
    for key, item in entry.items():
        if not key_pattern.match(key):
            raise _fail(f"{path}.{key}", key, keys)
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, (str, int, float)):
            raise _fail(f"{path}.{key}", item, "a string, number or boolean")
        result[key] = str(item)
    return result


def _secret_map(path: str, value: Any, target: str) -> dict[str, str]:
    """ECS: environment name -> SSM parameter or Secrets Manager ARN. Kubernetes: -> `<Secret>/<key>`."""
    entries = _string_map(path, value, _ENV_NAME, "environment variable names like DATABASE_PASSWORD")
    for key, ref in entries.items():
        if target == "nomad":
            raise ConfigError(f"dockyard:{path}.{key}: the nomad target does not read secrets yet; keep them "
                              "in Nomad Variables and out of dockyard:services")
        if target == "kubernetes":
            _match(f"{path}.{key}", ref, _K8S_SECRET_REF, "a key of a Kubernetes Secret, <secret-name>/<key>")
        else:
            _match(f"{path}.{key}", ref, _SECRET_REF,
                   "an SSM parameter name (/app/token) or an SSM / Secrets Manager ARN")
    return entries


def _command(path: str, value: Any) -> tuple[str, ...] | None:
    value = _json(path, value)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, value, 'a command as a list of strings, like ["python", "worker.py", "--check"]')
    return tuple(value)


def _parameter(path: str, value: Any, stack: str) -> str:
    name = naming.release_parameter(stack) if value is None else value
    try:
        return naming.validate_parameter_name(name)
    except BadInput as err:
        raise ConfigError(f"dockyard:{path}: {err.message}") from None


def _qualified_stack(path: str, value: Any) -> str:
    return _match(path, _text(path, value), _QUALIFIED_STACK, "a fully qualified stack, <organization>/<project>/<stack>")


def _ranges(values: tuple[int, ...]) -> str:
    if len(values) > 3:
        step = values[1] - values[0]
        return f"{values[0]} to {values[-1]} in steps of {step}"
    return ", ".join(map(str, values))

