"""What the app stack sends to AWS, checked against botocore's API model and moto, and the contract
between the registry's exported images and the app's task definitions."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from dockyard.targets.ecs.policies import ACCOUNT_WIDE_ACTIONS, secret_resource_arn
from dockyard.program import main
from tests.support.pulumi_harness import DockyardMocks, run_program
from tests.unit.app_fixtures import REGISTRY, SERVICES, app, task_containers

SESSION = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def assert_valid(service: str, operation: str, params: dict) -> None:
    model = SESSION.client(service).meta.service_model.operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.fixture(scope="module")
def dev():
    return app("dev", **{"dockyard:services": {**SERVICES, "web": {
        "port": 8080, "secrets": {"API_TOKEN": "/acme/dev/token",
                                  "STRIPE": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe-AbC",
                                  "DB_URL": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:url::"}}}})


def task_params(task) -> dict:
    i = task.inputs
    return {"family": i["family"], "networkMode": i["networkMode"],
            "requiresCompatibilities": i["requiresCompatibilities"], "cpu": i["cpu"], "memory": i["memory"],
            "executionRoleArn": i["executionRoleArn"], "taskRoleArn": i["taskRoleArn"],
            "runtimePlatform": {"operatingSystemFamily": i["runtimePlatform"]["operatingSystemFamily"],
                                "cpuArchitecture": i["runtimePlatform"]["cpuArchitecture"]},
            "volumes": [{"name": v["name"]} for v in i["volumes"]],
            "containerDefinitions": json.loads(i["containerDefinitions"])}


def test_task_definitions_are_accepted_by_ecs(dev):
    tasks = dev.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert len(tasks) == 2
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        for task in tasks:
            params = task_params(task)
            assert_valid("ecs", "RegisterTaskDefinition", params)
            registered = ecs.register_task_definition(**params)["taskDefinition"]
            assert registered["containerDefinitions"][0]["image"] == params["containerDefinitions"][0]["image"]


def test_services_are_accepted_by_ecs(dev):
    for service in dev.of_type("aws:ecs/service:Service"):
        i = service.inputs
        params = {
            "cluster": i["cluster"], "serviceName": i["name"], "taskDefinition": i["taskDefinition"],
            "desiredCount": int(i["desiredCount"]), "launchType": i["launchType"],
            "platformVersion": i["platformVersion"],
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": i["networkConfiguration"]["subnets"],
                "securityGroups": i["networkConfiguration"]["securityGroups"],
                "assignPublicIp": "ENABLED" if i["networkConfiguration"]["assignPublicIp"] else "DISABLED"}},
            "loadBalancers": [{"targetGroupArn": lb["targetGroupArn"], "containerName": lb["containerName"],
                               "containerPort": int(lb["containerPort"])} for lb in i.get("loadBalancers") or []],
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": i["deploymentCircuitBreaker"],
                "minimumHealthyPercent": int(i["deploymentMinimumHealthyPercent"]),
                "maximumPercent": int(i["deploymentMaximumPercent"])},
            "propagateTags": i["propagateTags"], "enableECSManagedTags": i["enableEcsManagedTags"],
        }
        if i.get("healthCheckGracePeriodSeconds"):
            params["healthCheckGracePeriodSeconds"] = int(i["healthCheckGracePeriodSeconds"])
        assert_valid("ecs", "CreateService", params)


def test_load_balancer_target_group_and_rule_are_valid_elbv2_requests(dev):
    alb = dev.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert_valid("elbv2", "CreateLoadBalancer", {"Name": alb["name"], "Subnets": alb["subnets"],
                                                 "SecurityGroups": alb["securityGroups"],
                                                 "Scheme": "internet-facing", "Type": alb["loadBalancerType"]})
    tg = dev.one("aws:lb/targetGroup:TargetGroup").inputs
    assert_valid("elbv2", "CreateTargetGroup", {
        "Name": tg["name"], "Protocol": tg["protocol"], "Port": int(tg["port"]), "VpcId": tg["vpcId"],
        "TargetType": tg["targetType"], "HealthCheckPath": tg["healthCheck"]["path"],
        "Matcher": {"HttpCode": tg["healthCheck"]["matcher"]}})
    rule = dev.one("aws:lb/listenerRule:ListenerRule").inputs
    assert_valid("elbv2", "CreateRule", {
        "ListenerArn": rule["listenerArn"], "Priority": int(rule["priority"]),
        "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": c["pathPattern"]["values"]}}
                       for c in rule["conditions"]],
        "Actions": [{"Type": "forward", "TargetGroupArn": a["targetGroupArn"]} for a in rule["actions"]]})
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        elbv2 = boto3.client("elbv2", region_name="us-east-1")
        elbv2.create_target_group(Name=tg["name"], Protocol="HTTP", Port=int(tg["port"]), VpcId=vpc,
                                  TargetType="ip", HealthCheckPath=tg["healthCheck"]["path"])


def test_database_is_a_valid_rds_request(dev):
    db = dev.one("aws:rds/instance:Instance").inputs
    assert_valid("rds", "CreateDBInstance", {
        "DBInstanceIdentifier": db["identifier"], "Engine": db["engine"], "EngineVersion": db["engineVersion"],
        "DBInstanceClass": db["instanceClass"], "AllocatedStorage": int(db["allocatedStorage"]),
        "StorageEncrypted": db["storageEncrypted"], "ManageMasterUserPassword": db["manageMasterUserPassword"],
        "MasterUsername": db["username"], "DBName": db["dbName"], "PubliclyAccessible": db["publiclyAccessible"],
        "BackupRetentionPeriod": int(db["backupRetentionPeriod"]), "MultiAZ": db["multiAz"],
        "EnableIAMDatabaseAuthentication": db["iamDatabaseAuthenticationEnabled"],
        "EnableCloudwatchLogsExports": db["enabledCloudwatchLogsExports"],
        "DeletionProtection": db["deletionProtection"], "StorageType": db["storageType"]})


def test_iam_documents_parse_and_grant_no_wildcards(dev):
    roles = dev.of_type("aws:iam/role:Role")
    policies = dev.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(roles) == 4 and len(policies) == 4  # execution and task (rds-db:connect) per service
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        for role in roles:
            iam.create_role(RoleName=role.inputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])
        for number, policy in enumerate(policies):
            document = json.loads(policy.inputs["policy"])
            iam.create_policy(PolicyName=f"p{number}", PolicyDocument=policy.inputs["policy"])
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                assert not any("*" in a for a in actions), actions
                if "*" in resources:
                    assert set(actions) <= ACCOUNT_WIDE_ACTIONS, actions
    web = json.loads([p for p in policies if p.name == "web-execution"][0].inputs["policy"])
    by_sid = {s["Sid"]: s for s in web["Statement"]}
    assert by_sid["PullOwnRepository"]["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/dockyard/web"
    assert by_sid["WriteOwnLogs"]["Resource"].startswith("arn:aws:logs:us-east-1:123456789012:log-group:/dockyard/dev/web")
    assert by_sid["ReadNamedParameters"]["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/acme/dev/token"]
    named = by_sid["ReadNamedSecrets"]["Resource"]
    # a partial ARN (no 6-character suffix) matches the secret through `-??????`; a JSON-key reference
    # grants the secret it names, while the container keeps the whole reference
    assert "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe-AbC-??????" in named
    assert "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf" in named
    assert not any(arn.endswith("::") for arn in named)
    web_secrets = {s["name"]: s["valueFrom"] for s in task_containers(dev)["web"]["secrets"]}
    assert web_secrets["DB_URL"] == "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:url::"
    assert not any("rds!db" in arn for arn in by_sid["ReadNamedSecrets"]["Resource"])
    trust = json.loads(roles[0].inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret"


@pytest.mark.parametrize("ref, resource", [
    (f"{SM}:db-AbCdEf:password::", f"{SM}:db-AbCdEf"),
    (f"{SM}:db-AbCdEf:password:AWSCURRENT:", f"{SM}:db-AbCdEf"),
    (f"{SM}:db-AbCdEf::AWSPREVIOUS:", f"{SM}:db-AbCdEf"),
    (f"{SM}:db-AbCdEf", f"{SM}:db-AbCdEf"),
    (f"{SM}:db:password::", f"{SM}:db-??????"),
    (f"{SM}:prod/stripe", f"{SM}:prod/stripe-??????"),
    (f"{SM}:rds!db-0a1b2c3d-AbCdEf", f"{SM}:rds!db-0a1b2c3d-AbCdEf"),
    ("/acme/dev/token", "arn:aws:ssm:us-east-1:123456789012:parameter/acme/dev/token"),
    ("arn:aws:ssm:us-east-1:123456789012:parameter/acme/token", "arn:aws:ssm:us-east-1:123456789012:parameter/acme/token"),
])
def test_secret_grants_name_the_secret_not_the_reference(ref, resource):
    assert secret_resource_arn(ref, region="us-east-1", account_id="123456789012") == resource


def test_registry_images_reach_the_app_task_definitions_unchanged():
    """The contract: what the registry stack exports is exactly what the app stack deploys."""
    registry = run_program(main, config={"dockyard:role": "registry"}, stack="registry")
    exported = registry.outputs["images"]
    run = app("dev", mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": exported}}))
    assert {s: c["image"] for s, c in task_containers(run).items()} == exported
    assert run.outputs["images"] == exported
