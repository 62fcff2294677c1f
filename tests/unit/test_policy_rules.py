"""The policy pack's rules, each with a compliant and a violating case, and every shipped config
run under mocks through all of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dockyard.program import main
from dockyard.release.commands.branches import branch_config
from dockyard.release.context import Context
from dockyard.release.commands.demo import app_config
from dockyard.release.project import Project, project_config, read_stack_config
from policy import rules
from policy.rules import RuleContext, evaluate
from tests.support.pulumi_harness import DockyardMocks, run_program
from tests.unit.app_fixtures import IMAGES, REGISTRY, manifest

ROOT = Path(__file__).resolve().parents[2]
PINNED = IMAGES["web"]
CONTAINER = {"name": "web", "image": PINNED, "user": "10001:10001", "readonlyRootFilesystem": True,
             "privileged": False, "environment": [{"name": "LOG_LEVEL", "value": "info"}],
             "logConfiguration": {"logDriver": "awslogs"}}
TASK = {"containerDefinitions": json.dumps([CONTAINER]), "taskRoleArn": "arn:task", "executionRoleArn": "arn:exec"}
POD = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
       "containers": [{"name": "web", "image": PINNED, "readinessProbe": {"httpGet": {}},
                       "livenessProbe": {"httpGet": {}},
                       "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
                       "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}
DEPLOYMENT = {"spec": {"template": {"spec": POD}}}
LIFECYCLE = json.loads(__import__("dockyard.registry.lifecycle", fromlist=["x"]).lifecycle_policy(30, 7))


def task_with(**container):
    return {**TASK, "containerDefinitions": json.dumps([{**CONTAINER, **container}])}


def deployment_with(path: str, value):
    doc = copy.deepcopy(DEPLOYMENT)
    node = doc["spec"]["template"]["spec"]["containers"][0]
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return doc


CASES = [
    ("ecr_immutable_tags", {"imageTagMutability": "IMMUTABLE"}, {"imageTagMutability": "MUTABLE"}),
    ("ecr_scan_on_push", {"imageScanningConfiguration": {"scanOnPush": True}}, {}),
    ("ecr_encrypted", {"encryptionConfigurations": [{"encryptionType": "KMS"}]},
     {"encryptionConfigurations": [{"encryptionType": "AES256"}]}),
    ("ecr_lifecycle_spares_releases", {"policy": json.dumps(LIFECYCLE)},
     {"policy": json.dumps({"rules": LIFECYCLE["rules"][2:]})}),
    ("ecs_not_privileged", TASK, task_with(privileged=True)),
    ("ecs_read_only_root", TASK, task_with(readonlyRootFilesystem=False)),
    ("ecs_non_root", TASK, task_with(user="0")),
    ("ecs_no_plaintext_secrets", TASK, task_with(environment=[{"name": "DB_PASSWORD", "value": "hunter2"}])),
    ("ecs_logging", TASK, task_with(logConfiguration=None)),
    ("ecs_image_pinned", TASK, task_with(image="web:latest")),
    ("ecs_separate_roles", TASK, {**TASK, "taskRoleArn": "arn:exec"}),
    ("ecs_service_private", {"networkConfiguration": {"assignPublicIp": False, "subnets": ["s"]}},
     {"networkConfiguration": {"assignPublicIp": True, "subnets": ["s"]}}),
    ("ecs_circuit_breaker", {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
     {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}),
    ("ecs_traffic_shift_wiring",
     {"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": "10"},
      "loadBalancers": [{"targetGroupArn": "tg-blue", "advancedConfiguration": {
          "alternateTargetGroupArn": "tg-green", "productionListenerRule": "rule", "roleArn": "role"}}]},
     {"deploymentConfiguration": {"strategy": "CANARY"}, "loadBalancers": [{"targetGroupArn": "tg-blue"}]}),
    ("ecs_alarms_roll_back", {"alarms": {"alarmNames": ["prod-5xx"], "enable": True, "rollback": True}},
     {"alarms": {"alarmNames": ["prod-5xx"], "enable": True, "rollback": False}}),
    ("ecs_container_insights", {"settings": [{"name": "containerInsights", "value": "enabled"}]}, {"settings": []}),
    ("logs_retention", {"retentionInDays": 30}, {}),
    ("iam_no_wildcards",
     {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                                          {"Effect": "Allow", "Action": ["ecr:BatchGetImage"], "Resource": "arn:x"}]})},
     {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:x"}]})}),
    ("alb_drop_invalid_headers", {"dropInvalidHeaderFields": True}, {"dropInvalidHeaderFields": False}),
    ("alb_deletion_protection", {"enableDeletionProtection": True}, {"enableDeletionProtection": False}),
    ("rds_encrypted", {"storageEncrypted": True}, {"storageEncrypted": False}),
    ("rds_private", {"publiclyAccessible": False}, {"publiclyAccessible": True}),
    ("rds_managed_password", {"manageMasterUserPassword": True}, {"password": "hunter2"}),
    ("rds_backups", {"backupRetentionPeriod": 7}, {"backupRetentionPeriod": 1}),
    ("rds_deletion_protection", {"deletionProtection": True}, {"deletionProtection": False}),
    ("sg_rules_as_resources", {"vpcId": "vpc-1", "description": "x"},
     {"vpcId": "vpc-1", "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}),
    ("k8s_restricted", DEPLOYMENT, deployment_with("securityContext.privileged", True)),
    ("k8s_probes", DEPLOYMENT, deployment_with("livenessProbe", None)),
    ("k8s_resources", DEPLOYMENT, deployment_with("resources", {})),
    ("k8s_image_pinned", DEPLOYMENT, deployment_with("image", "nginx:1.27")),
]


@pytest.mark.parametrize("rule, good, bad", CASES, ids=[c[0] for c in CASES])
def test_rule_passes_the_compliant_case_and_catches_the_violating_one(rule, good, bad):
    check = getattr(rules, rule)
    assert check(good, RuleContext()) == []
    assert check(bad, RuleContext()) != []


def test_every_rule_has_a_case():
    assert {r.check.__name__ for r in rules.RULES} == {c[0] for c in CASES}


def test_deletion_protection_is_not_required_of_ephemeral_stacks():
    assert rules.alb_deletion_protection({}, RuleContext(ephemeral=True)) == []
    assert rules.rds_deletion_protection({}, RuleContext(ephemeral=True)) == []


def test_prod_rolls_back_on_the_circuit_breaker_or_on_alarms_and_branches_need_neither():
    alarms = {"alarms": {"alarmNames": ["prod-5xx"], "enable": True, "rollback": True}}
    off = {"deploymentCircuitBreaker": {"enable": False, "rollback": False}}
    assert rules.ecs_circuit_breaker({**off, **alarms}, RuleContext()) == []
    assert rules.ecs_circuit_breaker(off, RuleContext()) == ["deployment circuit breaker with rollback, or "
                                                             "CloudWatch alarms with rollback"]
    assert rules.ecs_circuit_breaker(off, RuleContext(ephemeral=True)) == []


def test_blue_green_needs_a_bake_time_and_every_shifted_target_group_its_wiring():
    wired = CASES[[c[0] for c in CASES].index("ecs_traffic_shift_wiring")][1]
    no_bake = {**wired, "deploymentConfiguration": {"strategy": "BLUE_GREEN"}}
    assert rules.ecs_traffic_shift_wiring(no_bake, RuleContext()) == ["blue/green needs bakeTimeInMinutes"]
    # Rolling and headless services need no second target group.
    assert rules.ecs_traffic_shift_wiring({"deploymentConfiguration": {"strategy": "ROLLING"},
                                           "loadBalancers": [{"targetGroupArn": "tg"}]}, RuleContext()) == []
    assert rules.ecs_traffic_shift_wiring({"deploymentConfiguration": {"strategy": "BLUE_GREEN",
                                                                        "bakeTimeInMinutes": "5"}}, RuleContext()) == []


def test_https_redirect_is_required_once_a_certificate_is_set():
    http_404 = ("aws:lb/listener:Listener", "http", {"protocol": "HTTP", "defaultActions": [{"type": "fixed-response"}]})
    https = ("aws:lb/listener:Listener", "https", {"protocol": "HTTPS"})
    redirect = ("aws:lb/listener:Listener", "http", {"protocol": "HTTP", "defaultActions": [
        {"type": "redirect", "redirect": {"protocol": "HTTPS"}}]})
    assert rules.alb_https_redirect([http_404]) == []
    assert rules.alb_https_redirect([https, redirect]) == []
    assert rules.alb_https_redirect([https, http_404]) == [("http", "a certificate is set: plain HTTP must "
                                                                    "redirect to HTTPS")]


def test_the_pack_wires_every_rule_once():
    from policy.pack import policies

    names = [p.name for p in policies()]
    assert sorted(names) == sorted([r.name for r in rules.RULES] + list(rules.STACK_RULES))


# ----------------------------------------------------------------------------- shipped configs


def shipped(stack: str) -> dict:
    values, _ = read_stack_config(ROOT / f"Pulumi.{stack}.yaml")
    return values


def branch_of_dev() -> dict:
    project = Project(ROOT)
    engine = SimpleNamespace(qualified_name=lambda stack: f"organization/dockyard/{stack}")
    config, _ = branch_config(Context(project=project, deployer_factory=lambda: engine),
                              project.app_environment("dev"), "branch-feature-x")
    # The branch's stack file, under the project-level config the engine applies to every stack.
    config = {**project_config(ROOT / "Pulumi.yaml"), **config}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def dev_outputs() -> dict:
    mocks = DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}})
    return run_program(main, config=shipped("dev"), stack="dev", mocks=mocks).outputs


def kubernetes_app(tmp_path: Path):
    versions = tmp_path / "releases" / "kube" / "versions"
    versions.mkdir(parents=True)
    (versions / "000001.json").write_text(manifest())
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in app_config(tmp_path, "kube").items()}
    return run_program(main, config=config, stack="kube")


CONFIGS = {
    "registry": lambda _: run_program(main, config=shipped("registry"), stack="registry"),
    "dev": lambda _: run_program(main, config=shipped("dev"), stack="dev",
                               mocks=DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}})),
    "prod": lambda _: run_program(main, config=shipped("prod"), stack="prod",
                                mocks=DockyardMocks(parameters={"/dockyard/prod/release": (manifest(), 4)})),
    "branch-feature-x": lambda _: run_program(main, config=branch_of_dev(), stack="branch-feature-x", mocks=DockyardMocks(
        stack_outputs={REGISTRY: {"images": IMAGES}, "organization/dockyard/dev": {
            k: v for k, v in dev_outputs().items() if k in ("network", "cluster", "loadBalancer", "database")}},
        parameters={"/dockyard/branch-feature-x/release": (manifest(), 1)})),
    "kubernetes": kubernetes_app,
}


@pytest.mark.parametrize("stack", CONFIGS)
def test_shipped_configs_have_no_mandatory_violations(stack, tmp_path, capsys):
    run = CONFIGS[stack](tmp_path)
    resources = [(r.type, r.name, r.inputs) for r in run.resources if r.custom]
    assert len(resources) >= 4
    violations = evaluate(resources, RuleContext(ephemeral=stack.startswith("branch-")))
    mandatory = [v for v in violations if v.mandatory]
    assert mandatory == [], mandatory
    advisory = [v for v in violations if not v.mandatory]
    with capsys.disabled():
        print(f"\n  policy {stack}: {len(resources)} resources, 0 mandatory, {len(advisory)} advisory "
              f"{[f'{v.rule}:{v.resource}' for v in advisory]}")
