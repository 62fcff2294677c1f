"""The app stack on ECS under mocks: image sources, infrastructure, sharing, protection, errors."""

from __future__ import annotations

import json

import pulumi
import pytest

from dockyard.release_layout import VERSIONS_DIR, version_filename
from tests.support.pulumi_harness import ECR_HOST, DockyardMocks, fake_digest
from tests.unit.app_fixtures import BUILD_TYPES, IMAGES, REGISTRY, SERVICES, app, manifest, task_containers

BASE = "organization/dockyard/dev"


def assert_builds_nothing(run) -> None:
    assert not (run.types() & BUILD_TYPES), run.types() & BUILD_TYPES


# ----------------------------------------------------------------------------- image sources


def test_stack_source_deploys_exactly_the_registry_digests():
    run = app("dev")
    assert_builds_nothing(run)
    containers = task_containers(run)
    assert {s: c["image"] for s, c in containers.items()} == IMAGES
    assert run.outputs["images"] == IMAGES
    assert run.outputs["release"] == {"source": "stack", "version": None}


def test_ssm_source_deploys_the_parameter_and_reports_its_version():
    prod_images = {s: f"{ECR_HOST}/dockyard/{s}@{fake_digest(s + '-v7')}" for s in ("web", "worker")}
    mocks = DockyardMocks(parameters={"/dockyard/prod/release": (manifest(prod_images), 7)})
    run = app("prod", mocks=mocks, **{"dockyard:imageSource": "ssm"})
    assert_builds_nothing(run)
    assert {s: c["image"] for s, c in task_containers(run).items()} == prod_images
    assert run.outputs["release"] == {"source": "ssm", "version": 7}
    assert ("aws:ssm/getParameter:getParameter", {"name": "/dockyard/prod/release", "withDecryption": False}) in \
        mocks.invokes


def test_file_source_deploys_the_newest_version(tmp_path):
    versions = tmp_path / VERSIONS_DIR
    versions.mkdir()
    old = {s: f"{ECR_HOST}/dockyard/{s}@{fake_digest(s + '-old')}" for s in ("web", "worker")}
    (versions / version_filename(1)).write_text(manifest(old))
    (versions / version_filename(2)).write_text(manifest())
    (versions / "notes.txt").write_text("ignored")
    run = app("dev", **{"dockyard:imageSource": "file", "dockyard:releaseDir": str(tmp_path)})
    assert {s: c["image"] for s, c in task_containers(run).items()} == IMAGES
    assert run.outputs["release"] == {"source": "file", "version": 2}


def stopped(message: str, **kwargs) -> DockyardMocks:
    mocks = kwargs.pop("mocks", None) or DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}})
    with pytest.raises(pulumi.RunError) as err:
        app(mocks=mocks, **kwargs)
    assert message in str(err.value), str(err.value)
    return mocks


def test_missing_parameter_says_to_promote_and_registers_nothing():
    mocks = stopped("SSM parameter /dockyard/prod/release does not exist: stack prod has no release yet",
                    stack="prod", **{"dockyard:imageSource": "ssm"})
    assert mocks.created == []
    stopped("dockyard promote prod --from", stack="prod", **{"dockyard:imageSource": "ssm"})


@pytest.mark.parametrize("value, message", [
    ("{not json", "SSM parameter /dockyard/prod/release is not valid JSON"),
    (manifest({"web": IMAGES["web"]}), "SSM parameter /dockyard/prod/release has no image for worker"),
    (manifest({**IMAGES, "web": "web:latest"}), "images.web: web:latest has no digest"),
    (json.dumps({"schema": 9, "images": IMAGES}), "schema is 9"),
])
def test_bad_ssm_manifest_stops_with_the_cause(value, message):
    mocks = stopped(message, stack="prod", mocks=DockyardMocks(parameters={"/dockyard/prod/release": (value, 3)}),
                    **{"dockyard:imageSource": "ssm"})
    assert mocks.created == []


@pytest.mark.parametrize("outputs, message", [
    ({}, "stack organization/dockyard/registry output 'images' has no images map"),
    ({"images": {"web": IMAGES["web"]}}, "output 'images' has no image for worker; it has web"),
    ({"images": {**IMAGES, "worker": "ghcr.io/acme/worker:1.2"}}, "worker: ghcr.io/acme/worker:1.2 has no digest"),
])
def test_bad_registry_output_stops_with_the_cause(outputs, message):
    stopped(message, mocks=DockyardMocks(stack_outputs={REGISTRY: outputs}))


def test_app_stack_follows_the_registry_of_its_own_organization():
    acme = "acme/dockyard/registry"
    # Only acme's registry stack has outputs: reading any other stops the program.
    run = app("dev", organization="acme", mocks=DockyardMocks(stack_outputs={acme: {"images": IMAGES}}))
    assert {s: c["image"] for s, c in task_containers(run).items()} == IMAGES


def test_empty_file_store_says_to_promote(tmp_path):
    stopped(f"release store {tmp_path} has no release for stack dev",
            **{"dockyard:imageSource": "file", "dockyard:releaseDir": str(tmp_path)})


# ----------------------------------------------------------------------------- own infrastructure


def test_own_infrastructure_network_cluster_load_balancer_database():
    run = app("dev")
    assert run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == "10.0.0.0/16"
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 4 and len({s.inputs["availabilityZone"] for s in subnets}) == 2
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 1
    cluster = run.one("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"]

    alb = run.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["enableDeletionProtection"] is True
    assert alb.inputs["internal"] is False
    (listener,) = run.of_type("aws:lb/listener:Listener")
    assert listener.inputs["port"] == 80 and listener.inputs["defaultActions"][0]["type"] == "fixed-response"

    db = run.one("aws:rds/instance:Instance")
    expected = {"engine": "postgres", "manageMasterUserPassword": True, "storageEncrypted": True,
                "publiclyAccessible": False, "backupRetentionPeriod": 7, "iamDatabaseAuthenticationEnabled": True,
                "deletionProtection": True, "skipFinalSnapshot": False}
    assert {k: db.inputs.get(k) for k in expected} == expected
    assert db.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert db.inputs["finalSnapshotIdentifier"] == "dockyard-dev-final"
    assert "password" not in db.inputs
    assert db.protect

    outputs = run.outputs
    assert outputs["url"] == "http://dky-dev-1234567890.us-east-1.elb.amazonaws.com"
    assert outputs["services"] == {"web": outputs["url"] + "/", "worker": None}
    assert set(outputs) >= {"network", "cluster", "loadBalancer", "database"}
    assert outputs["database"]["port"] == 5432 and outputs["loadBalancer"]["listenerArn"] == listener.state["arn"]


def test_services_run_private_locked_down_and_autoscaled():
    run = app("dev")
    services = {s.inputs["name"]: s for s in run.of_type("aws:ecs/service:Service")}
    web = services["web"].inputs
    assert web["networkConfiguration"]["assignPublicIp"] is False
    assert web["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (web["deploymentMinimumHealthyPercent"], web["deploymentMaximumPercent"]) == (100, 200)
    assert web["healthCheckGracePeriodSeconds"] == 60 and web["launchType"] == "FARGATE"
    assert web["loadBalancers"][0]["containerPort"] == 8080
    assert "loadBalancers" not in services["worker"].inputs or not services["worker"].inputs["loadBalancers"]

    assert len(web["networkConfiguration"]["subnets"]) == 2

    tg = run.one("aws:lb/targetGroup:TargetGroup").inputs
    assert tg["targetType"] == "ip" and tg["healthCheck"]["path"] == "/healthz" and len(tg["name"]) <= 32
    rule = run.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["conditions"] == [{"pathPattern": {"values": ["/*"]}}] and rule["priority"] == 50000

    ingress = [r.inputs for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    from_lb = [r for r in ingress if r.get("description") == "load balancer"]
    assert len(from_lb) == 1 and from_lb[0]["fromPort"] == 8080 and "cidrIpv4" not in from_lb[0]
    to_db = [r for r in ingress if r["fromPort"] == 5432]
    assert len(to_db) == 2 and all("referencedSecurityGroupId" in r for r in to_db)

    targets = {t.inputs["resourceId"]: t.inputs for t in run.of_type("aws:appautoscaling/target:Target")}
    assert targets["service/dockyard-dev/web"]["minCapacity"] == 2
    assert targets["service/dockyard-dev/web"]["maxCapacity"] == 6
    policy = run.of_type("aws:appautoscaling/policy:Policy")[0].inputs
    assert policy["policyType"] == "TargetTrackingScaling"


def test_task_definitions_are_hardened():
    run = app("dev", **{"dockyard:services": {**SERVICES, "web": {
        "port": 8080, "environment": {"LOG_LEVEL": "info"},
        "secrets": {"API_TOKEN": "/acme/dev/token"}}}})
    tasks = {t.inputs["family"]: t.inputs for t in run.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    web_task = tasks["dockyard-dev-web"]
    assert web_task["requiresCompatibilities"] == ["FARGATE"] and web_task["networkMode"] == "awsvpc"
    assert web_task["executionRoleArn"] != web_task["taskRoleArn"]
    web = task_containers(run)["web"]
    assert web["readonlyRootFilesystem"] is True and web["privileged"] is False and web["user"] == "10001:10001"
    assert web["mountPoints"][0]["containerPath"] == "/tmp"
    assert web["healthCheck"]["command"][:2] == ["CMD", "python"] and "/healthz" in web["healthCheck"]["command"][-1]
    assert web["stopTimeout"] == 30
    assert web["logConfiguration"]["options"]["awslogs-group"] == "/dockyard/dev/web"
    env = {e["name"]: e["value"] for e in web["environment"]}
    assert env["LOG_LEVEL"] == "info" and env["DATABASE_NAME"] == "app" and env["DATABASE_HOST"].endswith(
        ".rds.amazonaws.com")
    secrets = {s["name"]: s["valueFrom"] for s in web["secrets"]}
    assert secrets["API_TOKEN"] == "arn:aws:ssm:us-east-1:123456789012:parameter/acme/dev/token"
    assert task_containers(run)["worker"]["healthCheck"]["command"] == ["CMD", "python", "worker.py", "--check"]


def test_https_with_a_certificate_redirects_http():
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
    run = app("dev", **{"dockyard:certificateArn": cert})
    listeners = {l.inputs["port"]: l.inputs for l in run.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[443]["certificateArn"] == cert
    assert listeners[80]["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    assert run.outputs["url"].startswith("https://")


def test_existing_network_creates_no_vpc():
    run = app("dev", **{"dockyard:network": {"vpcId": "vpc-0123abcd",
                                             "publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"],
                                             "privateSubnetIds": ["subnet-0000000c", "subnet-0000000d"]}})
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    web = [s for s in run.of_type("aws:ecs/service:Service") if s.inputs["name"] == "web"][0]
    assert web.inputs["networkConfiguration"]["subnets"] == ["subnet-0000000c", "subnet-0000000d"]
    assert run.outputs["network"]["cidr"] == "172.31.0.0/16"


def test_database_false_creates_none_and_passes_no_credentials():
    run = app("dev", **{"dockyard:database": False})
    assert not run.of_type("aws:rds/instance:Instance")
    assert "DATABASE_PASSWORD" not in json.dumps(task_containers(run))
    assert run.outputs["database"] is None


def test_routing_puts_specific_paths_before_the_default_route():
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": {**IMAGES, "api": IMAGES["web"]}}})
    run = app("dev", mocks=mocks, **{"dockyard:services": {"web": {"port": 8080}, "worker": {},
                                                           "api": {"port": 9000, "path": "/api/*"}},
                                     "dockyard:database": False})
    rules = {r.name: r.inputs for r in run.of_type("aws:lb/listenerRule:ListenerRule")}
    assert rules["api-rule"]["priority"] < rules["web-rule"]["priority"]
    assert rules["api-rule"]["conditions"] == [{"pathPattern": {"values": ["/api/*"]}}]
    assert run.outputs["services"]["api"].endswith("/api/")


ROUTED_IMAGES = {**IMAGES, **{s: IMAGES["web"] for s in ("api", "admin", "docs")}, "jobs": IMAGES["worker"]}


def rule_priorities(services: dict) -> dict[str, int]:
    run = app("dev", mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": ROUTED_IMAGES}}),
              **{"dockyard:services": services, "dockyard:database": False})
    return {r.name.removesuffix("-rule"): int(r.inputs["priority"])
            for r in run.of_type("aws:lb/listenerRule:ListenerRule")}


def test_listener_priorities_stay_put_when_services_come_and_go():
    before = rule_priorities({"web": {"port": 8080}, "worker": {}, "api": {"port": 9000, "path": "/api/*"},
                              "docs": {"port": 9200, "path": "/docs/*"}})
    # `admin` sorts before the others, a worker comes and one goes, `docs` is removed.
    after = rule_priorities({"web": {"port": 8080}, "jobs": {}, "api": {"port": 9000, "path": "/api/*"},
                             "admin": {"port": 9100, "path": "/admin/*"}})
    assert before["api"] == after["api"] and before["web"] == after["web"]
    for priorities in (before, after):
        assert len(set(priorities.values())) == len(priorities)
        # the default route (web: no path, no host) is evaluated after every specific one
        assert priorities["web"] == max(priorities.values())


def test_a_service_can_pin_its_rule_priority():
    priorities = rule_priorities({"web": {"port": 8080}, "api": {"port": 9000, "path": "/api/*", "priority": 42}})
    assert priorities["api"] == 42


def test_an_arm64_service_runs_on_an_arm64_task_definition():
    run = app("dev", **{"dockyard:services": {**SERVICES, "worker": {**SERVICES["worker"],
                                                                     "platform": "linux/arm64"}}})
    architectures = {t.inputs["family"]: t.inputs["runtimePlatform"]["cpuArchitecture"]
                     for t in run.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert architectures == {"dockyard-dev-web": "X86_64", "dockyard-dev-worker": "ARM64"}


def test_no_security_group_mixes_inline_rules_with_rule_resources():
    """The provider documents that inline rules and rule resources on one group revoke each other;
    branch stacks add rule resources to the base's groups, so every rule is a resource of its own."""
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
    for https, run in ((False, app("dev")), (True, app("dev", **{"dockyard:certificateArn": cert}))):
        groups = {g.name: g.inputs for g in run.of_type("aws:ec2/securityGroup:SecurityGroup")}
        assert set(groups) == {"lb-sg", "database-sg", "web-sg", "worker-sg"}
        for name, group in groups.items():
            assert not group.get("ingress") and not group.get("egress"), name
        lb_group = run.outputs["loadBalancer"]["securityGroupId"]
        ingress = [r.inputs for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                   if r.inputs["securityGroupId"] == lb_group]
        assert sorted(r["fromPort"] for r in ingress) == ([80, 443] if https else [80])
        assert {r["cidrIpv4"] for r in ingress} == {"0.0.0.0/0"}
        egress = {r.inputs["securityGroupId"]: r.inputs
                  for r in run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
        # the load balancer reaches only into the VPC; each service reaches out (registry, AWS APIs)
        assert len(egress) == 3 and egress[lb_group]["cidrIpv4"] == "10.0.0.0/16"


def master_secret(run) -> str:
    return run.one("aws:rds/instance:Instance").state["masterUserSecrets"][0]["secretArn"]


def policies_of(run, role_kind: str) -> dict[str, dict]:
    return {p.name.removesuffix(f"-{role_kind}"): json.loads(p.inputs["policy"])
            for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith(f"-{role_kind}")}


def test_no_container_receives_the_database_master_secret_by_default():
    run = app("dev")
    secret = master_secret(run)
    assert secret.split(":secret:")[1] not in json.dumps(task_containers(run))
    assert secret.split(":secret:")[1] not in json.dumps([p.inputs for p in run.of_type("aws:iam/rolePolicy:RolePolicy")])
    assert "secretArn" not in (run.outputs["database"] or {})  # branch stacks cannot even find it
    db = run.one("aws:rds/instance:Instance")
    assert db.inputs["iamDatabaseAuthenticationEnabled"] is True
    for service, container in task_containers(run).items():
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["DATABASE_USER"] == service and env["DATABASE_NAME"] == "app" and env["DATABASE_PORT"] == "5432"
        assert env["DATABASE_HOST"] == db.state["address"]
        assert not any(s["name"].startswith("DATABASE") for s in container["secrets"])
        # IAM database authentication as the service's own database user
        (statement,) = policies_of(run, "task")[service]["Statement"]
        assert statement["Action"] == "rds-db:connect"
        assert statement["Resource"] == f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{db.state['resourceId']}/{service}"


def test_master_credentials_only_for_a_service_that_opts_in():
    run = app("dev", **{"dockyard:services": {**SERVICES, "web": {"port": 8080, "databaseMaster": True}}})
    secret = master_secret(run)
    containers = task_containers(run)
    web_secrets = {s["name"]: s["valueFrom"] for s in containers["web"]["secrets"]}
    assert web_secrets["DATABASE_PASSWORD"] == f"{secret}:password::"
    assert {e["name"]: e["value"] for e in containers["web"]["environment"]}["DATABASE_USER"] == "dockyard"
    assert secret not in json.dumps(containers["worker"])
    execution = policies_of(run, "execution")
    assert secret in json.dumps(execution["web"]) and secret not in json.dumps(execution["worker"])


def test_a_branch_stack_connects_as_its_services_never_with_the_master_secret():
    shared = base_outputs()
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: shared})
    run = app("branch-db", mocks=mocks, **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True})
    assert "DATABASE_PASSWORD" not in json.dumps(task_containers(run))
    assert "secretsmanager" not in json.dumps(policies_of(run, "execution"))
    resource = policies_of(run, "task")["web"]["Statement"][0]["Resource"]
    assert resource == f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{shared['database']['resourceId']}/web"


def test_an_ecs_service_waits_for_its_execution_policy_and_its_ingress_rules():
    run = app("dev")
    services = {s.inputs["name"]: s for s in run.of_type("aws:ecs/service:Service")}
    for service, dependencies in ((services["web"], ("web-execution", "web-from-lb", "web-to-db")),
                                  (services["worker"], ("worker-execution", "worker-to-db"))):
        names = {urn.rsplit("::", 1)[1] for urn in service.dependencies}
        assert set(dependencies) <= names, (service.name, names)


def test_retained_database_keeps_what_it_stands_on_and_its_log_groups():
    run = app("prod", mocks=DockyardMocks(parameters={"/dockyard/prod/release": (manifest(), 1)}),
              **{"dockyard:imageSource": "ssm"})
    db = run.one("aws:rds/instance:Instance")
    assert db.retain_on_delete
    # what the instance's network interfaces sit in: deleting it would fail while the instance lives on
    private_subnets = [n for n in run.of_type("aws:ec2/subnet:Subnet") if "private" in n.name]
    for kept in (run.one("aws:rds/subnetGroup:SubnetGroup"), run.one("aws:ec2/vpc:Vpc"), *private_subnets,
                 [g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "database-sg"][0]):
        assert kept.retain_on_delete, kept.name
    assert len(private_subnets) == 2
    # RDS creates its export log groups without retention unless they exist first
    groups = {g.inputs["name"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for export in db.inputs["enabledCloudwatchLogsExports"]:
        group = groups[f"/aws/rds/instance/{db.inputs['identifier']}/{export}"]
        assert group.inputs["retentionInDays"] == 30 and group.retain_on_delete
        assert any(urn.endswith(f"::{group.name}") for urn in db.dependencies)


# ----------------------------------------------------------------------------- protection


def test_protected_stack_protects_and_retains_its_state():
    run = app("prod", mocks=DockyardMocks(parameters={"/dockyard/prod/release": (manifest(), 1)}),
              **{"dockyard:imageSource": "ssm"})
    logs = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert logs and all(l.protect and l.retain_on_delete for l in logs)
    assert all(l.inputs["retentionInDays"] == 30 for l in logs)
    database = run.one("aws:rds/instance:Instance")
    assert database.protect and database.retain_on_delete


def test_ephemeral_stack_protects_and_retains_nothing_and_runs_small():
    run = app("branch-x", **{"dockyard:ephemeral": True})
    assert not [r.name for r in run.resources if r.protect or r.retain_on_delete]
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False
    db = run.one("aws:rds/instance:Instance").inputs
    assert db["deletionProtection"] is False and db["skipFinalSnapshot"] is True
    tasks = run.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert {(t.inputs["cpu"], t.inputs["memory"]) for t in tasks} == {("256", "512")}
    assert {s.inputs["desiredCount"] for s in run.of_type("aws:ecs/service:Service")} == {1}


# ----------------------------------------------------------------------------- sharing


def base_outputs(database: bool = True) -> dict:
    dev = app("dev", **({} if database else {"dockyard:database": False})).outputs
    return {k: dev[k] for k in ("network", "cluster", "loadBalancer", "database")}


def test_branch_stack_shares_the_base_and_creates_only_its_services():
    shared = base_outputs()
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: shared})
    run = app("branch-feature-x", mocks=mocks, **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True})
    assert_builds_nothing(run)
    for created_by_base in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ecs/cluster:Cluster",
                            "aws:lb/loadBalancer:LoadBalancer", "aws:rds/instance:Instance",
                            "aws:ec2/natGateway:NatGateway"):
        assert not run.of_type(created_by_base), created_by_base
    listener = run.one("aws:lb/listener:Listener")
    assert listener.inputs["loadBalancerArn"] == shared["loadBalancer"]["arn"]
    assert 10000 <= listener.inputs["port"] <= 10489
    rule = run.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["listenerArn"] == listener.state["arn"] != shared["loadBalancer"]["listenerArn"]
    services = run.of_type("aws:ecs/service:Service")
    assert {s.inputs["cluster"] for s in services} == {shared["cluster"]["arn"]}
    # The base already runs `web` and `worker` in that cluster: the branch's names are its own.
    assert {s.inputs["name"] for s in services} == {"branch-feature-x-web", "branch-feature-x-worker"}
    assert run.outputs["deployments"]["web"]["service"] == "branch-feature-x-web"
    ingress = [r.inputs for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert any(r["securityGroupId"] == shared["database"]["securityGroupId"] for r in ingress)
    assert any(r["securityGroupId"] == shared["loadBalancer"]["securityGroupId"] and
               r["fromPort"] == listener.inputs["port"] for r in ingress)
    assert run.outputs["url"].endswith(f":{int(listener.inputs['port'])}")
    assert not {"network", "cluster", "loadBalancer", "database"} & set(run.outputs)
    assert task_containers(run)["web"]["environment"]


def test_branch_of_an_https_base_serves_plain_http_on_its_port():
    """The base's certificate names the base's host, never `<alb dns>:<port>`: a branch on it would fail
    every TLS check. Its own port serves HTTP, and its URL (what the command verifies) says so."""
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
    dev = app("dev", **{"dockyard:certificateArn": cert}).outputs
    shared = {k: dev[k] for k in ("network", "cluster", "loadBalancer", "database")}
    run = app("branch-tls", mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: shared}),
              **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True})
    listener = run.one("aws:lb/listener:Listener").inputs
    assert listener["protocol"] == "HTTP" and not listener.get("certificateArn") and not listener.get("sslPolicy")
    assert run.outputs["url"] == f"http://{shared['loadBalancer']['dnsName']}:{int(listener['port'])}"


def test_branch_listener_takes_the_port_the_command_chose_and_is_tagged_with_its_stack():
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: base_outputs()})
    run = app("branch-port", mocks=mocks, **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True,
                                             "dockyard:listenerPort": 10321})
    listener = run.one("aws:lb/listener:Listener").inputs
    assert listener["port"] == 10321 and listener["tags"]["dockyard:stack"] == "branch-port"


def test_branch_stack_without_the_base_database_gets_no_credentials():
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: base_outputs(database=False)})
    run = app("branch-y", mocks=mocks, **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True})
    assert "DATABASE_HOST" not in json.dumps(task_containers(run))


def test_branch_stack_whose_base_shares_nothing_is_refused():
    stopped(f"dockyard:shareFrom: stack {BASE} exports no network, cluster",
            mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: {}}),
            stack="branch-z", **{"dockyard:shareFrom": BASE})


def test_branch_rules_sit_on_the_branchs_own_listener_never_the_bases():
    shared = base_outputs()
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: shared})
    branch = app("branch-a", mocks=mocks, **{"dockyard:shareFrom": BASE})
    listener = branch.one("aws:lb/listener:Listener")
    assert {r.inputs["listenerArn"] for r in branch.of_type("aws:lb/listenerRule:ListenerRule")} == \
        {listener.state["arn"]}
    assert listener.state["arn"] != shared["loadBalancer"]["listenerArn"]


def test_branch_of_a_base_deployed_before_iam_database_auth_says_to_redeploy_it():
    shared = base_outputs()
    shared["database"] = {k: v for k, v in shared["database"].items() if k != "resourceId"}
    stopped(f"dockyard:shareFrom: stack {BASE} exports a database without resourceId",
            mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}, BASE: shared}),
            stack="branch-old", **{"dockyard:shareFrom": BASE, "dockyard:ephemeral": True})
