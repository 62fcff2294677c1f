"""ECS deployment strategies: the settings (validated like every key), the resources each strategy
needs (second target group, test listener and rule, the role ECS shifts traffic with) and the payloads,
checked against botocore's ECS and ELBv2 models."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from dockyard.config import load
from dockyard.errors import ConfigError
from tests.unit.app_fixtures import SERVICES, app

SESSION = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def assert_valid(service: str, operation: str, params: dict) -> None:
    model = SESSION.client(service).meta.service_model.operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def settings(deployment=None, services=None, target="ecs", **extra):
    raw = {"dockyard:role": "app", "dockyard:target": target, "dockyard:services": json.dumps(services or SERVICES),
           **{f"dockyard:{k}": json.dumps(v) for k, v in extra.items()}}
    if deployment is not None:
        raw["dockyard:deployment"] = json.dumps(deployment)
    return load(raw, stack="prod")


# ----------------------------------------------------------------------------- settings


def test_default_strategy_is_rolling_with_the_circuit_breaker():
    web = settings().services["web"].deployment
    assert web.strategy == "rolling" and web.circuit_breaker is True and web.alarms == ()


def test_environment_strategy_applies_to_every_service_and_a_service_may_change_it():
    s = settings({"strategy": "blueGreen", "bakeTimeInMinutes": 15, "alarms": ["prod-5xx"]},
                 services={**SERVICES, "api": {"port": 9000, "path": "/api/*",
                                               "deployment": {"strategy": "canary", "canaryPercent": 10}}})
    web, api = s.services["web"].deployment, s.services["api"].deployment
    assert (web.strategy, web.bake_time_minutes, web.alarms) == ("blueGreen", 15, ("prod-5xx",))
    assert (api.strategy, api.canary_percent, api.bake_time_minutes, api.alarms) == ("canary", 10.0, 15, ("prod-5xx",))


def test_a_worker_has_no_traffic_to_shift_so_an_environment_canary_runs_it_blue_green():
    s = settings({"strategy": "linear", "stepPercent": 20, "bakeTimeInMinutes": 5})
    assert s.services["web"].deployment.strategy == "linear"
    assert s.services["worker"].deployment.strategy == "blueGreen"
    assert s.services["worker"].deployment.bake_time_minutes == 5


@pytest.mark.parametrize("deployment, services, message", [
    ({"strategy": "blue-green"}, None,
     "dockyard:deployment.strategy: got 'blue-green'; expected one of rolling, blueGreen, canary, linear"),
    ({"strategy": "blueGreen", "bakeTimeInMinutes": 1441}, None,
     "dockyard:deployment.bakeTimeInMinutes: got 1441; expected a whole number from 0 to 1440"),
    ({"strategy": "canary", "canaryPercent": 0.05}, None,
     "dockyard:deployment.canaryPercent: got 0.05; expected a multiple of 0.1 from 0.1 to 100"),
    ({"strategy": "linear", "stepPercent": 2}, None,
     "dockyard:deployment.stepPercent: got 2; expected a multiple of 0.1 from 3 to 100"),
    ({"strategy": "linear", "stepPercent": 12.34}, None,
     "dockyard:deployment.stepPercent: got 12.34; expected a multiple of 0.1 from 3 to 100"),
    ({"strategy": "rolling", "bakeTimeInMinutes": 5}, None,
     "dockyard:deployment.bakeTimeInMinutes applies to strategies blueGreen, canary, linear, not rolling"),
    ({"strategy": "blueGreen", "canaryPercent": 5}, None,
     "dockyard:deployment.canaryPercent applies to strategy canary, not blueGreen"),
    ({"alarms": "prod-5xx"}, None,
     "dockyard:deployment.alarms: got 'prod-5xx'; expected a list of CloudWatch alarm names"),
    ({"alarms": [""]}, None,
     "dockyard:deployment.alarms[0]: got ''; expected a CloudWatch alarm name of 1 to 255 characters"),
    ({"circuitBreaker": "sometimes"}, None, "dockyard:deployment.circuitBreaker: got 'sometimes'; expected true or false"),
    ({"strategy": "blueGreen", "bakeTime": 5}, None, "dockyard:deployment.bakeTime is not a setting here; known keys"),
    (None, {**SERVICES, "worker": {"deployment": {"strategy": "canary"}}},
     "dockyard:services.worker.deployment.strategy: got 'canary'; worker has no port, so no traffic to shift: "
     "expected rolling or blueGreen"),
])
def test_bad_deployment_settings_name_the_key_the_value_and_what_is_allowed(deployment, services, message):
    with pytest.raises(ConfigError) as err:
        settings(deployment, services=services)
    assert message in err.value.message, err.value.message


def test_deployment_applies_to_the_ecs_target_only():
    with pytest.raises(ConfigError, match="dockyard:deployment applies to target ecs"):
        settings({"strategy": "blueGreen"}, target="kubernetes")


# ----------------------------------------------------------------------------- resources


def services_by_name(run) -> dict:
    return {s.inputs["name"]: s.inputs for s in run.of_type("aws:ecs/service:Service")}


def test_rolling_keeps_one_target_group_no_test_listener_and_waits_for_steady_state():
    run = app("dev")
    web = services_by_name(run)["web"]
    assert web["deploymentConfiguration"]["strategy"] == "ROLLING"
    assert "advancedConfiguration" not in web["loadBalancers"][0]
    assert web["waitForSteadyState"] is True
    assert len(run.of_type("aws:lb/targetGroup:TargetGroup")) == 1
    assert len(run.of_type("aws:lb/listener:Listener")) == 1


@pytest.fixture(scope="module")
def blue_green():
    return app("prod", **{"dockyard:deployment": {"strategy": "blueGreen", "bakeTimeInMinutes": 10,
                                                  "alarms": ["prod-web-5xx", "prod-web-latency"]}})


def test_blue_green_creates_a_second_target_group_a_test_listener_and_rule(blue_green):
    groups = {g.name: g.inputs for g in blue_green.of_type("aws:lb/targetGroup:TargetGroup")}
    assert set(groups) == {"web-tg", "web-tg-alt"}
    assert groups["web-tg"]["name"] != groups["web-tg-alt"]["name"]
    assert all(len(g["name"]) <= 32 and g["healthCheck"]["path"] == "/healthz" for g in groups.values())
    listeners = {l.name: l for l in blue_green.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {"lb-http", "lb-test"}
    test = listeners["lb-test"]
    rules = {r.name: r.inputs for r in blue_green.of_type("aws:lb/listenerRule:ListenerRule")}
    assert set(rules) == {"web-rule", "web-test-rule"}
    assert rules["web-test-rule"]["listenerArn"] == test.state["arn"]
    assert rules["web-test-rule"]["conditions"] == rules["web-rule"]["conditions"]
    # Both rules forward to both groups: ECS moves the weights during a deployment.
    for rule in rules.values():
        (action,) = rule["actions"]
        weights = {g["arn"]: g["weight"] for g in action["forward"]["targetGroups"]}
        assert sorted(weights.values()) == [0, 100] and len(weights) == 2
    # Clients reach the test port like the production one.
    ports = [r.inputs["fromPort"] for r in blue_green.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.name.startswith("lb-from-clients")]
    assert sorted(ports) == [80, int(test.inputs["port"])]


def test_blue_green_service_names_both_groups_both_rules_the_role_bake_time_and_alarms(blue_green):
    web = services_by_name(blue_green)["web"]
    config = web["deploymentConfiguration"]
    assert config["strategy"] == "BLUE_GREEN" and int(config["bakeTimeInMinutes"]) == 10
    assert web["alarms"] == {"alarmNames": ["prod-web-5xx", "prod-web-latency"], "enable": True, "rollback": True}
    assert web["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    advanced = web["loadBalancers"][0]["advancedConfiguration"]
    groups = {g.name: g.state["arn"] for g in blue_green.of_type("aws:lb/targetGroup:TargetGroup")}
    rules = {r.name: r.state["arn"] for r in blue_green.of_type("aws:lb/listenerRule:ListenerRule")}
    assert web["loadBalancers"][0]["targetGroupArn"] == groups["web-tg"]
    assert advanced["alternateTargetGroupArn"] == groups["web-tg-alt"]
    assert advanced["productionListenerRule"] == rules["web-rule"]
    assert advanced["testListenerRule"] == rules["web-test-rule"]
    role = [r for r in blue_green.of_type("aws:iam/role:Role") if r.name == "web-traffic"][0]
    assert advanced["roleArn"] == role.state["arn"]
    # The command watches the deployment (and can abort it): the engine does not wait through the bake.
    assert web["waitForSteadyState"] is False
    # The worker has no load balancer: blue/green without traffic shifting, and no role.
    worker = services_by_name(blue_green)["worker"]
    assert worker["deploymentConfiguration"]["strategy"] == "BLUE_GREEN" and not worker.get("loadBalancers")
    assert not [r for r in blue_green.of_type("aws:iam/role:Role") if r.name == "worker-traffic"]


def test_traffic_role_is_assumed_by_ecs_and_may_touch_only_its_own_groups_and_rules(blue_green):
    role = [r for r in blue_green.of_type("aws:iam/role:Role") if r.name == "web-traffic"][0]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    policy = json.loads([p for p in blue_green.of_type("aws:iam/rolePolicy:RolePolicy")
                         if p.name == "web-traffic"][0].inputs["policy"])
    groups = sorted(g.state["arn"] for g in blue_green.of_type("aws:lb/targetGroup:TargetGroup"))
    rules = sorted(r.state["arn"] for r in blue_green.of_type("aws:lb/listenerRule:ListenerRule"))
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert sorted(by_sid["RegisterInOwnGroups"]["Resource"]) == groups
    assert sorted(by_sid["ShiftOwnRules"]["Resource"]) == rules
    assert by_sid["ShiftOwnRules"]["Action"] == ["elasticloadbalancing:ModifyRule"]
    # Describe calls accept no narrower resource.
    assert by_sid["ReadLoadBalancing"]["Resource"] == "*"
    assert all(a.startswith("elasticloadbalancing:Describe") for a in by_sid["ReadLoadBalancing"]["Action"])
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_role(RoleName=role.inputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])
        iam.put_role_policy(RoleName=role.inputs["name"], PolicyName="traffic", PolicyDocument=json.dumps(policy))


@pytest.mark.parametrize("deployment, expected", [
    ({"strategy": "canary", "canaryPercent": 10, "canaryBakeTimeInMinutes": 15, "bakeTimeInMinutes": 20},
     {"strategy": "CANARY", "bakeTimeInMinutes": 20,
      "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 15}}),
    ({"strategy": "linear", "stepPercent": 25, "stepBakeTimeInMinutes": 3},
     {"strategy": "LINEAR", "bakeTimeInMinutes": 5,
      "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 3}}),
])
def test_canary_and_linear_carry_their_percentages_and_intervals(deployment, expected):
    run = app("prod", **{"dockyard:deployment": deployment})
    config = services_by_name(run)["web"]["deploymentConfiguration"]
    got = {k: v for k, v in config.items()}
    got["bakeTimeInMinutes"] = int(got["bakeTimeInMinutes"])
    for key in ("canaryConfiguration", "linearConfiguration"):
        if key in got:
            got[key] = {k: (float(v) if "Percent" in k else int(v)) for k, v in got[key].items()}
    assert got == expected
    assert len(run.of_type("aws:lb/targetGroup:TargetGroup")) == 2


def test_circuit_breaker_off_with_alarms():
    run = app("prod", **{"dockyard:deployment": {"circuitBreaker": False, "alarms": ["prod-5xx"]}})
    web = services_by_name(run)["web"]
    assert web["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}
    assert web["alarms"]["alarmNames"] == ["prod-5xx"]


def test_https_test_listener_uses_the_certificate():
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
    run = app("prod", **{"dockyard:certificateArn": cert, "dockyard:deployment": {"strategy": "blueGreen"}})
    test = [l.inputs for l in run.of_type("aws:lb/listener:Listener") if l.name == "lb-test"][0]
    assert test["protocol"] == "HTTPS" and test["certificateArn"] == cert


# ----------------------------------------------------------------------------- payloads


def service_params(i: dict) -> dict:
    config = i["deploymentConfiguration"]
    deployment = {"deploymentCircuitBreaker": i["deploymentCircuitBreaker"],
                  "minimumHealthyPercent": int(i["deploymentMinimumHealthyPercent"]),
                  "maximumPercent": int(i["deploymentMaximumPercent"]), "strategy": config["strategy"]}
    if "bakeTimeInMinutes" in config:
        deployment["bakeTimeInMinutes"] = int(config["bakeTimeInMinutes"])
    if "canaryConfiguration" in config:
        c = config["canaryConfiguration"]
        deployment["canaryConfiguration"] = {"canaryPercent": float(c["canaryPercent"]),
                                             "canaryBakeTimeInMinutes": int(c["canaryBakeTimeInMinutes"])}
    if "linearConfiguration" in config:
        c = config["linearConfiguration"]
        deployment["linearConfiguration"] = {"stepPercent": float(c["stepPercent"]),
                                             "stepBakeTimeInMinutes": int(c["stepBakeTimeInMinutes"])}
    if i.get("alarms"):
        deployment["alarms"] = i["alarms"]
    balancers = []
    for lb in i.get("loadBalancers") or []:
        entry = {"targetGroupArn": lb["targetGroupArn"], "containerName": lb["containerName"],
                 "containerPort": int(lb["containerPort"])}
        if lb.get("advancedConfiguration"):
            entry["advancedConfiguration"] = dict(lb["advancedConfiguration"])
        balancers.append(entry)
    return {"cluster": i["cluster"], "serviceName": i["name"], "taskDefinition": i["taskDefinition"],
            "desiredCount": int(i["desiredCount"]), "launchType": i["launchType"],
            "loadBalancers": balancers, "deploymentConfiguration": deployment,
            "deploymentController": {"type": i["deploymentController"]["type"]}}


@pytest.mark.parametrize("deployment", [
    {"strategy": "rolling"},
    {"strategy": "blueGreen", "bakeTimeInMinutes": 10, "alarms": ["a"]},
    {"strategy": "canary", "canaryPercent": 5},
    {"strategy": "linear", "stepPercent": 10, "circuitBreaker": False, "alarms": ["a", "b"]},
])
def test_every_strategy_is_a_create_service_request_ecs_accepts(deployment):
    run = app("prod", **{"dockyard:deployment": deployment})
    for service in run.of_type("aws:ecs/service:Service"):
        assert_valid("ecs", "CreateService", service_params(service.inputs))
    for rule in run.of_type("aws:lb/listenerRule:ListenerRule"):
        i = rule.inputs
        actions = []
        for a in i["actions"]:
            if "forward" in a:
                actions.append({"Type": "forward", "ForwardConfig": {"TargetGroups": [
                    {"TargetGroupArn": g["arn"], "Weight": int(g["weight"])} for g in a["forward"]["targetGroups"]]}})
            else:
                actions.append({"Type": "forward", "TargetGroupArn": a["targetGroupArn"]})
        assert_valid("elbv2", "CreateRule", {
            "ListenerArn": i["listenerArn"], "Priority": int(i["priority"]),
            "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": c["pathPattern"]["values"]}}
                           for c in i["conditions"]], "Actions": actions})
    for listener in run.of_type("aws:lb/listener:Listener"):
        i = listener.inputs
        assert_valid("elbv2", "CreateListener", {
            "LoadBalancerArn": i["loadBalancerArn"], "Port": int(i["port"]), "Protocol": i["protocol"],
            "DefaultActions": [{"Type": a["type"], **({"FixedResponseConfig": {
                "StatusCode": a["fixedResponse"]["statusCode"], "ContentType": a["fixedResponse"]["contentType"],
                "MessageBody": a["fixedResponse"]["messageBody"]}} if a["type"] == "fixed-response" else {})}
                for a in i["defaultActions"]]})
