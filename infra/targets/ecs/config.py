"""Target ecs: its keys (`dockyard:database`, `dockyard:network`) and its checks across services (pure)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard import naming
from dockyard.errors import ConfigError
from dockyard.validation import boolean, fail, integer, known_keys, mapping, matches

if TYPE_CHECKING:
    from dockyard.config import ServiceSettings

DATABASE_KEYS = ("instanceClass", "allocatedStorage", "engineVersion", "name", "multiAz",
                 "backupRetentionDays")
NETWORK_KEYS = ("vpcId", "publicSubnetIds", "privateSubnetIds", "cidr", "availabilityZones",
                "natGateways")
_SECRET_REF = re.compile(r"^(/[a-zA-Z0-9_.\-/]+|arn:aws[a-z-]*:(ssm|secretsmanager):[a-z0-9-]+:\d{12}:\S+)$")
_CIDR = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-8])$")
_DB_INSTANCE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


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
class SharedDatabase:
    """A `shareFrom` stack: use the base stack's database, if it has one."""



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



def check_priorities(services: Mapping[str, ServiceSettings]) -> None:
    """Two rules on one listener never share a priority (AWS refuses the second)."""
    from dockyard.config import rule_priority

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



def database(value: Any, share_from: str | None) -> DatabaseSettings | SharedDatabase | None:
    """`dockyard:database` (decoded): the shared RDS PostgreSQL instance, the base's (shareFrom), or none."""
    if value is False:
        return None
    if value is None and share_from:
        return SharedDatabase()
    if share_from:
        raise ConfigError("dockyard:database: a stack with dockyard:shareFrom uses its base's database; "
                          "remove dockyard:database, or set it to false to run without one")
    if value is None or value is True:
        return DatabaseSettings()
    entry = mapping("database", value, default=None)
    known_keys("database", entry, DATABASE_KEYS)
    defaults = DatabaseSettings()
    return DatabaseSettings(
        instance_class=matches("database.instanceClass", entry.get("instanceClass", defaults.instance_class),
                              _DB_INSTANCE, "an RDS instance class like db.t4g.micro"),
        allocated_storage=integer("database.allocatedStorage", entry.get("allocatedStorage", 20), 20, 65536),
        engine_version=matches("database.engineVersion", str(entry.get("engineVersion", defaults.engine_version)),
                              re.compile(r"^1[3-9](\.\d+)?$"), "a PostgreSQL version 13 or later, like 16 or 16.4"),
        name=matches("database.name", entry.get("name", defaults.name), _DB_NAME,
                    "a database name: a letter, then letters, digits or '_', at most 63"),
        multi_az=boolean("database.multiAz", entry.get("multiAz", False)),
        backup_retention_days=integer("database.backupRetentionDays", entry.get("backupRetentionDays", 7), 7, 35),
    )



# EC2 refuses subnets smaller than /28.
MIN_SUBNET_PREFIX = 28


def _vpc_cidr(value: Any, zones: int) -> str:
    """A public and a private subnet per zone, split evenly (2 x zones rounded up to a power of two)."""
    cidr = matches("network.cidr", value, _CIDR, "an IPv4 CIDR from /16 to /28")
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        raise fail("network.cidr", cidr, "a network address (host bits zero), like 10.0.0.0/16") from None
    blocks = 2 * zones
    longest = MIN_SUBNET_PREFIX - (blocks - 1).bit_length()
    if network.prefixlen > longest:
        raise ConfigError(f"dockyard:network.cidr: got {cidr!r}; {zones} zones need {blocks} subnets of at least "
                          f"/{MIN_SUBNET_PREFIX}: expected a prefix from /16 to /{longest}")
    return cidr


def network(raw: Any) -> NetworkSettings:
    entry = mapping("network", raw, default={}) or {}
    known_keys("network", entry, NETWORK_KEYS)
    vpc_id = matches("network.vpcId", entry.get("vpcId"), _VPC_ID, "a VPC id like vpc-0123abcd")
    if vpc_id is None:
        stray = sorted(k for k in ("publicSubnetIds", "privateSubnetIds") if k in entry)
        if stray:
            raise ConfigError(f"dockyard:network.{stray[0]} needs dockyard:network.vpcId, the VPC the subnets are in")
        zones = integer("network.availabilityZones", entry.get("availabilityZones", 2), 2, 6)
        return NetworkSettings(
            cidr=_vpc_cidr(entry.get("cidr", "10.0.0.0/16"), zones),
            availability_zones=zones,
            # Tasks run in private subnets: without a NAT gateway they cannot pull images, write logs or read
            # secrets. A VPC that reaches AWS through endpoints instead is an existing one (vpcId).
            nat_gateways=integer("network.natGateways", entry.get("natGateways", 1), 1, 6),
        )
    for key in ("cidr", "availabilityZones", "natGateways"):
        if key in entry:
            raise ConfigError(f"dockyard:network.{key} describes a new VPC; it cannot be combined with vpcId")

    def subnets(key: str) -> tuple[str, ...]:
        value = entry.get(key)
        if not isinstance(value, list) or len(value) < 2:
            raise ConfigError(f"dockyard:network.{key}: got {value!r}; expected a list of two or more subnet ids "
                              "in different availability zones")
        return tuple(matches(f"network.{key}", s, _SUBNET_ID, "a subnet id like subnet-0123abcd") for s in value)

    return NetworkSettings(vpc_id=vpc_id, public_subnet_ids=subnets("publicSubnetIds"),
                           private_subnet_ids=subnets("privateSubnetIds"))




def secret_reference(path: str, ref: str) -> None:
    """ECS reads secrets from SSM parameters or Secrets Manager."""
    matches(path, ref, _SECRET_REF, "an SSM parameter name (/app/token) or an SSM / Secrets Manager ARN")
