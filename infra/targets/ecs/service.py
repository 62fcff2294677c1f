"""One service on ECS Fargate: log group, roles, task definition, service, routing and autoscaling."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard import naming
from dockyard.targets.ecs import policies
from dockyard.targets.ecs.task_definition import (SCRATCH_VOLUME, DatabaseConnection, container_definitions_json,
                                       database_user, uses_master)
from dockyard.config import ServiceSettings
from dockyard.targets.ecs.deployment import ECS_STRATEGY, DeploymentSettings
from dockyard.images import ImageRef, cpu_architecture, ecr_repository_arn

CPU_TARGET_PERCENT = 60
HEALTH_CHECK_GRACE_SECONDS = 60


@dataclass(frozen=True)
class Route:
    """Where a routed service attaches: a listener, its priority, and the load balancer's group."""

    listener_arn: pulumi.Input[str]
    load_balancer_security_group_id: pulumi.Input[str]
    priority: int
    base_url: pulumi.Input[str]
    # Blue/green, canary, linear: where the new revision takes test traffic first (None: no test rule).
    test_listener_arn: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class DatabaseAccess:
    connection: pulumi.Input[DatabaseConnection]
    security_group_id: pulumi.Input[str]
    port: int


@dataclass(frozen=True)
class EcsServiceArgs:
    stack: str
    service: ServiceSettings
    image: pulumi.Input[str]  # pinned: the image source already refused anything else
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    log_retention_days: int
    ephemeral: bool
    region: str
    account_id: str
    route: Route | None = None
    database: DatabaseAccess | None = None
    shared_cluster: bool = False  # in a base stack's cluster, where the base already runs `web`


class EcsService(pulumi.ComponentResource):
    url: pulumi.Output[str | None]
    service_name: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EcsServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:EcsService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service, stack = args.service, args.stack
        strategy = service.deployment
        self._child = child
        # Logs outlive a production stack; a branch stack takes everything with it.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=naming.log_group(stack, service.name), retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=not args.ephemeral, retain_on_delete=not args.ephemeral))
        # The container gets the whole reference (a JSON key included); IAM is granted the secret itself.
        secret_arns = {env: policies.secret_arn(ref, region=args.region, account_id=args.account_id)
                       for env, ref in service.secrets.items()}
        grants = sorted({policies.secret_resource_arn(ref, region=args.region, account_id=args.account_id)
                         for ref in service.secrets.values()})
        trust = policies.ecs_tasks_trust_policy(args.account_id)
        execution_role = aws.iam.Role(f"{name}-execution", name=naming.iam_role(stack, service.name, "execution"),
                                      assume_role_policy=trust, opts=child)
        connection = pulumi.Output.from_input(args.database.connection) if args.database else None
        # Only a service that opted in (databaseMaster) may read the master secret.
        database_secret = (connection.apply(lambda c: c.master_secret_arn if uses_master(service, c) else "")
                           if connection else pulumi.Output.from_input(""))
        execution_policy = aws.iam.RolePolicy(
            f"{name}-execution", role=execution_role.id,
            policy=pulumi.Output.all(args.image, logs.arn, database_secret).apply(
                lambda v: policies.execution_policy(
                    repository_arn=ecr_repository_arn(ImageRef.parse(v[0])), log_group_arn=v[1],
                    secret_arns=[*grants, *([v[2]] if v[2] else [])])),
            opts=child)
        # The application's own identity: only IAM database authentication as its own database user.
        task_role = aws.iam.Role(f"{name}-task", name=naming.iam_role(stack, service.name, "task"),
                                 assume_role_policy=trust, opts=child)
        depends: list[pulumi.Resource] = [execution_policy]
        if connection is not None:
            depends.append(aws.iam.RolePolicy(
                f"{name}-task", role=task_role.id,
                policy=connection.apply(lambda c: policies.database_connect_policy(
                    region=args.region, account_id=args.account_id, resource_id=c.resource_id,
                    user=database_user(service, c))),
                opts=child))
        definitions = pulumi.Output.all(args.image, logs.name, connection).apply(
            lambda v: container_definitions_json(service, image=v[0], log_group=v[1], region=args.region,
                                                 secrets=secret_arns, database=v[2]))
        task = aws.ecs.TaskDefinition(
            f"{name}-task", family=naming.fit(f"dockyard-{stack}-{service.name}", 255),
            network_mode="awsvpc", requires_compatibilities=["FARGATE"], cpu=str(service.cpu),
            memory=str(service.memory), execution_role_arn=execution_role.arn, task_role_arn=task_role.arn,
            runtime_platform={"operating_system_family": "LINUX",
                              "cpu_architecture": cpu_architecture(service.platform)},
            volumes=[{"name": SCRATCH_VOLUME}], container_definitions=definitions, opts=child)

        # Rules are resources of their own, never inline: the provider documents that mixing both
        # styles on one group makes each side revoke the other's.
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description=f"dockyard {service.name}: from the load balancer only",
            opts=child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress", security_group_id=group.id, ip_protocol="-1", cidr_ipv4="0.0.0.0/0",
            description="registry, AWS APIs and dependencies", opts=child)
        load_balancers = []
        self.url = pulumi.Output.from_input(None)
        if args.route and service.port is not None:
            from_lb = aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-lb", security_group_id=group.id, ip_protocol="tcp", from_port=service.port,
                to_port=service.port, referenced_security_group_id=args.route.load_balancer_security_group_id,
                description="load balancer", opts=child)
            target = _target_group(f"{name}-tg", naming.target_group(stack, service.name, service.port),
                                   args, child)
            depends.append(from_lb)
            if strategy.two_revisions:
                load_balancers = [self._two_target_groups(name, args, target, depends)]
            else:
                rule = aws.lb.ListenerRule(
                    f"{name}-rule", listener_arn=args.route.listener_arn, priority=args.route.priority,
                    conditions=_conditions(service), actions=[{"type": "forward", "target_group_arn": target.arn}],
                    opts=child)
                depends.append(rule)
                load_balancers = [{"target_group_arn": target.arn, "container_name": service.name,
                                   "container_port": service.port}]
            self.url = pulumi.Output.from_input(args.route.base_url).apply(lambda base: _service_url(base, service))
        if args.database:
            depends.append(aws.vpc.SecurityGroupIngressRule(
                f"{name}-to-db", security_group_id=args.database.security_group_id, ip_protocol="tcp",
                from_port=args.database.port, to_port=args.database.port, referenced_security_group_id=group.id,
                description=f"dockyard {stack}/{service.name}", opts=child))

        # Names are unique per cluster: a stack in a base's cluster prefixes its own.
        service_name = naming.fit(f"{stack}-{service.name}", 255) if args.shared_cluster else service.name
        ecs_service = aws.ecs.Service(
            f"{name}-service", name=service_name, cluster=args.cluster_arn, task_definition=task.arn,
            desired_count=service.desired_count, launch_type="FARGATE", platform_version="LATEST",
            network_configuration={"subnets": args.private_subnet_ids, "security_groups": [group.id],
                                   "assign_public_ip": False},
            load_balancers=load_balancers,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS if load_balancers else None,
            deployment_controller={"type": "ECS"},
            deployment_configuration=_deployment_configuration(strategy),
            deployment_circuit_breaker={"enable": strategy.circuit_breaker, "rollback": strategy.circuit_breaker},
            alarms=({"alarm_names": list(strategy.alarms), "enable": True, "rollback": True}
                    if strategy.alarms else None),
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True,
            # Rolling: the engine waits for steady state. The other strategies bake for minutes: the
            # `dockyard` command watches them (and can stop them), the engine does not wait through it.
            wait_for_steady_state=not strategy.two_revisions,
            # Autoscaling owns the running count once the service exists. The first tasks start only
            # once their execution role may pull and log and their traffic is admitted (IAM propagation).
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, ignore_changes=["desiredCount"]))
        resource_id = pulumi.Output.concat("service/", args.cluster_name, "/", ecs_service.name)
        scaling = aws.appautoscaling.Target(
            f"{name}-scaling", service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
            resource_id=resource_id, min_capacity=service.min_count, max_capacity=service.max_count, opts=child)
        aws.appautoscaling.Policy(
            f"{name}-cpu", policy_type="TargetTrackingScaling", service_namespace=scaling.service_namespace,
            scalable_dimension=scaling.scalable_dimension, resource_id=scaling.resource_id,
            target_tracking_scaling_policy_configuration={
                "target_value": CPU_TARGET_PERCENT, "scale_in_cooldown": 120, "scale_out_cooldown": 60,
                "predefined_metric_specification": {"predefined_metric_type": "ECSServiceAverageCPUUtilization"}},
            opts=child)
        self.service_name = ecs_service.name
        self.task_definition_arn = task.arn
        self.register_outputs({"url": self.url, "serviceName": self.service_name,
                               "taskDefinitionArn": self.task_definition_arn})


    def _two_target_groups(self, name: str, args: EcsServiceArgs, blue: aws.lb.TargetGroup,
                           depends: list[pulumi.Resource]) -> dict:
        """Blue/green, canary, linear: a second target group, the production rule (and a test rule) forwarding
        to both, and the role ECS moves their weights with."""
        service, route, child = args.service, args.route, self._child
        assert route is not None and service.port is not None
        green = _target_group(f"{name}-tg-alt", naming.target_group(args.stack, f"{service.name}-alt", service.port),
                              args, child)
        # ECS rewrites the weights on every deployment: the program sets them once and leaves them to ECS.
        forward = [{"type": "forward", "forward": {"target_groups": [
            {"arn": blue.arn, "weight": 100}, {"arn": green.arn, "weight": 0}]}}]
        rule_opts = pulumi.ResourceOptions(parent=self, ignore_changes=["actions"])
        production = aws.lb.ListenerRule(
            f"{name}-rule", listener_arn=route.listener_arn, priority=route.priority,
            conditions=_conditions(service), actions=forward, opts=rule_opts)
        rules = [production]
        if route.test_listener_arn is not None:
            rules.append(aws.lb.ListenerRule(
                f"{name}-test-rule", listener_arn=route.test_listener_arn, priority=route.priority,
                conditions=_conditions(service), actions=forward, opts=rule_opts))
        role = aws.iam.Role(f"{name}-traffic", name=naming.iam_role(args.stack, service.name, "traffic"),
                            assume_role_policy=policies.ecs_service_trust_policy(args.account_id), opts=child)
        grant = aws.iam.RolePolicy(
            f"{name}-traffic", role=role.id,
            policy=pulumi.Output.all(blue.arn, green.arn, *[r.arn for r in rules]).apply(
                lambda arns: policies.traffic_shift_policy(target_group_arns=arns[:2], rule_arns=arns[2:])),
            opts=child)
        depends += [*rules, grant]
        advanced = {"alternate_target_group_arn": green.arn, "production_listener_rule": production.arn,
                    "role_arn": role.arn}
        if len(rules) > 1:
            advanced["test_listener_rule"] = rules[1].arn
        return {"target_group_arn": blue.arn, "container_name": service.name, "container_port": service.port,
                "advanced_configuration": advanced}


def _target_group(resource_name: str, group_name: str, args: EcsServiceArgs,
                  child: pulumi.ResourceOptions) -> aws.lb.TargetGroup:
    service = args.service
    return aws.lb.TargetGroup(
        resource_name, name=group_name, port=service.port, protocol="HTTP", target_type="ip", vpc_id=args.vpc_id,
        deregistration_delay=30,
        health_check={"path": service.health_check_path, "matcher": "200-399", "interval": 15,
                      "timeout": 5, "healthy_threshold": 2, "unhealthy_threshold": 3},
        opts=child)


def _deployment_configuration(strategy: DeploymentSettings) -> dict:
    """ECS's DeploymentConfiguration for the strategy (the provider takes bake times as strings)."""
    config: dict = {"strategy": ECS_STRATEGY[strategy.strategy]}
    if strategy.two_revisions:
        config["bake_time_in_minutes"] = str(strategy.bake_time_minutes)
    if strategy.strategy == "canary":
        config["canary_configuration"] = {"canary_percent": strategy.canary_percent,
                                          "canary_bake_time_in_minutes": str(strategy.canary_bake_time_minutes)}
    if strategy.strategy == "linear":
        config["linear_configuration"] = {"step_percent": strategy.step_percent,
                                          "step_bake_time_in_minutes": str(strategy.step_bake_time_minutes)}
    return config


def _conditions(service: ServiceSettings) -> list[dict]:
    conditions = []
    if service.host:
        conditions.append({"host_header": {"values": [service.host]}})
    conditions.append({"path_pattern": {"values": [service.path or "/*"]}})
    return conditions


def _service_url(base: str, service: ServiceSettings) -> str:
    if service.host:
        scheme = base.split("://", 1)[0]
        base = f"{scheme}://{service.host}"
    path = (service.path or "/").replace("*", "")
    return base.rstrip("/") + (path if path.startswith("/") else "/" + path)
