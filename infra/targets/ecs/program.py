"""An app stack on ECS Fargate: its own network, cluster, load balancer and database, or a base's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.sync_await import _sync_await

from dockyard import naming
from dockyard.targets.ecs.database import MASTER_USERNAME, POSTGRES_PORT, Database, DatabaseArgs
from dockyard.targets.ecs.service import DatabaseAccess, EcsService, EcsServiceArgs, Route
from dockyard.app.image_source import ResolvedRelease
from dockyard.targets.ecs.load_balancer import BranchListener, BranchListenerArgs, LoadBalancer, LoadBalancerArgs
from dockyard.targets.ecs.network import Network, NetworkArgs
from dockyard.targets.ecs.task_definition import DatabaseConnection
from dockyard.config import AppSettings, DatabaseSettings, SharedDatabase, rule_priority
from dockyard.errors import ConfigError

SHARED_OUTPUTS = ("network", "cluster", "loadBalancer", "database")


@dataclass(frozen=True)
class Platform:
    """What services run on, whether created here or read from the base stack."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    listener_arn: pulumi.Input[str] | None
    load_balancer_security_group_id: pulumi.Input[str] | None
    url: pulumi.Input[str] | None
    database: DatabaseAccess | None
    test_listener_arn: pulumi.Input[str] | None = None  # blue/green, canary, linear: the test listener


def deploy(settings: AppSettings, release: ResolvedRelease) -> None:
    identity = aws.get_caller_identity()
    region = aws.get_region().region
    routed = any(s.routed for s in settings.services.values())
    platform = _shared(settings) if settings.share_from else _own(settings, routed)

    urls: dict[str, pulumi.Output[Any]] = {}
    deployments: dict[str, Any] = {}
    for service in sorted(settings.services.values(), key=lambda s: s.name):
        route = None
        if service.routed and platform.listener_arn is not None:
            # Each stack has a listener of its own, so priorities only need to be unique within the stack.
            route = Route(listener_arn=platform.listener_arn,
                          load_balancer_security_group_id=platform.load_balancer_security_group_id,
                          priority=rule_priority(service), base_url=platform.url,
                          test_listener_arn=platform.test_listener_arn)
        deployed = EcsService(service.name, EcsServiceArgs(
            stack=settings.stack, service=service,
            image=release.images.apply(lambda images, s=service.name: images[s]),
            cluster_arn=platform.cluster_arn, cluster_name=platform.cluster_name, vpc_id=platform.vpc_id,
            private_subnet_ids=platform.private_subnet_ids, log_retention_days=settings.log_retention_days,
            ephemeral=settings.ephemeral, region=region, account_id=identity.account_id, route=route,
            database=platform.database, shared_cluster=settings.share_from is not None))
        urls[service.name] = deployed.url
        deployments[service.name] = {"cluster": platform.cluster_arn, "service": deployed.service_name,
                                     "taskDefinition": deployed.task_definition_arn}
    pulumi.export("url", platform.url)
    # What `dockyard` compares with what ECS actually runs after a deploy.
    pulumi.export("deployments", deployments)
    pulumi.export("services", pulumi.Output.all(**urls) if urls else {})


def _own(settings: AppSettings, routed: bool) -> Platform:
    zones = tuple(aws.get_availability_zones(state="available").names)
    if not settings.network.existing and len(zones) < settings.network.availability_zones:
        raise pulumi.RunError(str(ConfigError(
            f"dockyard:network.availabilityZones: got {settings.network.availability_zones}; "
            f"this region has {len(zones)} available")))
    retains_database = isinstance(settings.database, DatabaseSettings) and not settings.ephemeral
    network = Network("network", NetworkArgs(settings=settings.network, availability_zones=zones,
                                             retain_private=retains_database))
    cluster = aws.ecs.Cluster("cluster", name=naming.cluster(settings.stack),
                              settings=[{"name": "containerInsights", "value": "enabled"}])
    balancer = None
    if routed:
        balancer = LoadBalancer("lb", LoadBalancerArgs(
            stack=settings.stack, vpc_id=network.vpc_id, vpc_cidr=network.cidr,
            public_subnet_ids=network.public_subnet_ids, certificate_arn=settings.certificate_arn,
            ephemeral=settings.ephemeral,
            test_listener=any(s.routed and s.deployment.two_revisions for s in settings.services.values())))
    database = None
    access = None
    if isinstance(settings.database, DatabaseSettings):
        database = Database("database", DatabaseArgs(
            stack=settings.stack, settings=settings.database, vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids, ephemeral=settings.ephemeral,
            log_retention_days=settings.log_retention_days))
        connection = pulumi.Output.all(database.address, database.name, database.resource_id, database.secret_arn).apply(
            lambda v: DatabaseConnection(address=v[0], port=POSTGRES_PORT, name=v[1], resource_id=v[2],
                                         master_username=MASTER_USERNAME, master_secret_arn=v[3]))
        access = DatabaseAccess(connection=connection, security_group_id=database.security_group_id,
                                port=POSTGRES_PORT)

    # What a branch stack needs to run beside this one (read back in _shared).
    pulumi.export("network", {"vpcId": network.vpc_id, "cidr": network.cidr,
                              "publicSubnetIds": network.public_subnet_ids,
                              "privateSubnetIds": network.private_subnet_ids})
    pulumi.export("cluster", {"name": cluster.name, "arn": cluster.arn})
    pulumi.export("loadBalancer", None if balancer is None else {
        "arn": balancer.arn, "dnsName": balancer.dns_name, "securityGroupId": balancer.security_group_id,
        "listenerArn": balancer.listener_arn, "certificateArn": settings.certificate_arn, "url": balancer.url})
    # No master secret here: branch stacks read these outputs, and never receive it.
    pulumi.export("database", None if database is None else {
        "address": database.address, "port": POSTGRES_PORT, "name": database.name, "username": MASTER_USERNAME,
        "resourceId": database.resource_id, "securityGroupId": database.security_group_id})
    return Platform(
        vpc_id=network.vpc_id, private_subnet_ids=network.private_subnet_ids, cluster_arn=cluster.arn,
        cluster_name=cluster.name, listener_arn=balancer.listener_arn if balancer else None,
        load_balancer_security_group_id=balancer.security_group_id if balancer else None,
        url=balancer.url if balancer else None, database=access,
        test_listener_arn=balancer.test_listener_arn if balancer else None)


def read_base_outputs(stack_name: str) -> dict[str, Any]:
    """The base stack's shared outputs as plain values: what exists there decides what is created here."""
    base = pulumi.StackReference("base", stack_name=stack_name)
    values = {name: _sync_await(base.get_output_details(name)) for name in SHARED_OUTPUTS}
    return {name: details.value if details.value is not None else details.secret_value
            for name, details in values.items()}


def _shared(settings: AppSettings) -> Platform:
    base = read_base_outputs(settings.share_from)
    missing = [name for name in ("network", "cluster") if not base.get(name)]
    if missing:
        raise pulumi.RunError(
            f"dockyard:shareFrom: stack {settings.share_from} exports no {', '.join(missing)}; share from an app "
            "stack that owns its infrastructure (deploy it first)")
    network, cluster, balancer = base["network"], base["cluster"], base.get("loadBalancer")
    listener = None
    if balancer and any(s.routed for s in settings.services.values()):
        port = settings.listener_port or naming.branch_listener_port(settings.stack)
        if balancer.get("certificateArn"):
            pulumi.log.warn(f"{settings.share_from} serves HTTPS; this branch's preview is plain HTTP on port {port} "
                            "(the base's certificate cannot cover <load balancer>:<port>)")
        listener = BranchListener("listener", BranchListenerArgs(
            stack=settings.stack, load_balancer_arn=balancer["arn"], dns_name=balancer["dnsName"],
            security_group_id=balancer["securityGroupId"], port=port))
    database = base.get("database") if isinstance(settings.database, SharedDatabase) else None
    access = None
    if database and not database.get("resourceId"):
        raise pulumi.RunError(f"dockyard:shareFrom: stack {settings.share_from} exports a database without "
                              "resourceId (deployed by an older dockyard); deploy it again first")
    if database:
        access = DatabaseAccess(
            connection=DatabaseConnection(address=database["address"], port=int(database["port"]),
                                          name=database["name"], resource_id=database["resourceId"],
                                          master_username=database["username"], master_secret_arn=None),
            security_group_id=database["securityGroupId"], port=int(database["port"]))
    return Platform(
        vpc_id=network["vpcId"], private_subnet_ids=network["privateSubnetIds"], cluster_arn=cluster["arn"],
        cluster_name=cluster["name"], listener_arn=listener.listener_arn if listener else None,
        load_balancer_security_group_id=balancer["securityGroupId"] if balancer else None,
        url=listener.url if listener else None, database=access)

