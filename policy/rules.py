"""dockyard's guardrails as plain functions: a resource's type and properties in, violations out.

Properties are as the engine sees them (camelCase). The policy pack in
`__main__.py` only wires these rules; tests call them directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)", re.IGNORECASE)
# Actions AWS accepts no narrower resource for: registry login, and the load balancer Describe calls that
# ECS makes while shifting traffic.
ACCOUNT_WIDE_ACTIONS = {"ecr:GetAuthorizationToken", "elasticloadbalancing:DescribeListeners",
                        "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
                        "elasticloadbalancing:DescribeTargetHealth"}


@dataclass(frozen=True)
class RuleContext:
    """What a rule needs to know about the stack, not the resource."""

    ephemeral: bool = False


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    types: tuple[str, ...]
    check: Callable[[dict[str, Any], RuleContext], list[str]]
    mandatory: bool = True


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str
    mandatory: bool


# ----------------------------------------------------------------------------- helpers


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _containers(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _as_list(_json(props.get("containerDefinitions"))) if isinstance(c, dict)]


def _pod_spec(props: dict[str, Any]) -> dict[str, Any] | None:
    spec = props.get("spec") or {}
    template = spec.get("template") or {}
    return template.get("spec") if isinstance(template.get("spec"), dict) else None


# ----------------------------------------------------------------------------- ECR

ECR = ("aws:ecr/repository:Repository",)


def ecr_immutable_tags(p: dict, _: RuleContext) -> list[str]:
    return [] if p.get("imageTagMutability") == "IMMUTABLE" else ["image tags must be IMMUTABLE"]


def ecr_scan_on_push(p: dict, _: RuleContext) -> list[str]:
    scan = p.get("imageScanningConfiguration") or {}
    return [] if scan.get("scanOnPush") is True else ["scan on push must be enabled"]


def ecr_encrypted(p: dict, _: RuleContext) -> list[str]:
    configs = _as_list(p.get("encryptionConfigurations"))
    ok = any((c or {}).get("encryptionType") in ("KMS", "KMS_DSSE") for c in configs)
    return [] if ok else ["repositories must be encrypted with KMS"]


def ecr_lifecycle_spares_releases(p: dict, _: RuleContext) -> list[str]:
    policy = _json(p.get("policy")) or {}
    rules = sorted(policy.get("rules") or [], key=lambda r: r.get("rulePriority", 0))
    for rule in rules:
        selection = rule.get("selection") or {}
        if "release-" in (selection.get("tagPrefixList") or []):
            if selection.get("countType") == "imageCountMoreThan" and selection.get("countNumber", 0) >= 1000:
                return []
            return ["the rule matching release- tags must keep them (imageCountMoreThan >= 1000)"]
        if selection.get("tagStatus") in ("any", "tagged"):
            return ["a rule that can expire release- tagged images comes before any rule sparing them"]
    return ["no lifecycle rule spares images tagged release-*"]


# ----------------------------------------------------------------------------- ECS

TASK = ("aws:ecs/taskDefinition:TaskDefinition",)


def ecs_not_privileged(p: dict, _: RuleContext) -> list[str]:
    return [f"container {c.get('name')} is privileged" for c in _containers(p) if c.get("privileged")]


def ecs_read_only_root(p: dict, _: RuleContext) -> list[str]:
    return [f"container {c.get('name')} needs readonlyRootFilesystem" for c in _containers(p)
            if c.get("readonlyRootFilesystem") is not True]


def ecs_non_root(p: dict, _: RuleContext) -> list[str]:
    bad = []
    for c in _containers(p):
        user = str(c.get("user") or "")
        if not user or user.split(":")[0] in ("0", "root"):
            bad.append(f"container {c.get('name')} must run as a non-root user")
    return bad


def ecs_no_plaintext_secrets(p: dict, _: RuleContext) -> list[str]:
    return [f"container {c.get('name')}: {e.get('name')} looks like a secret; pass it through `secrets`"
            for c in _containers(p) for e in _as_list(c.get("environment")) if SECRET_NAME.search(e.get("name", ""))]


def ecs_logging(p: dict, _: RuleContext) -> list[str]:
    return [f"container {c.get('name')} must log with awslogs" for c in _containers(p)
            if (c.get("logConfiguration") or {}).get("logDriver") != "awslogs"]


def ecs_image_pinned(p: dict, _: RuleContext) -> list[str]:
    return [f"container {c.get('name')} image {c.get('image')} is not pinned by digest" for c in _containers(p)
            if not DIGEST.search(str(c.get("image", "")))]


def ecs_separate_roles(p: dict, _: RuleContext) -> list[str]:
    same = p.get("taskRoleArn") and p.get("taskRoleArn") == p.get("executionRoleArn")
    return ["the task role must differ from the execution role"] if same else []


def ecs_service_private(p: dict, _: RuleContext) -> list[str]:
    network = p.get("networkConfiguration") or {}
    problems = []
    if not network:
        problems.append("services run in awsvpc mode with a network configuration")
    if network.get("assignPublicIp"):
        problems.append("tasks must not get public IPs")
    return problems


def ecs_circuit_breaker(p: dict, ctx: RuleContext) -> list[str]:
    """Outside ephemeral stacks a failed deployment rolls back: on the circuit breaker, or on alarms."""
    breaker = p.get("deploymentCircuitBreaker") or {}
    alarms = p.get("alarms") or {}
    if ctx.ephemeral or (breaker.get("enable") and breaker.get("rollback")):
        return []
    if alarms.get("enable") and alarms.get("rollback") and alarms.get("alarmNames"):
        return []
    return ["deployment circuit breaker with rollback, or CloudWatch alarms with rollback"]


def ecs_alarms_roll_back(p: dict, _: RuleContext) -> list[str]:
    alarms = p.get("alarms") or {}
    if alarms.get("enable") and not alarms.get("rollback"):
        return ["deployment alarms that fire must roll the deployment back (rollback: true)"]
    return []


def ecs_traffic_shift_wiring(p: dict, _: RuleContext) -> list[str]:
    """Blue/green, canary, linear: each target group has its alternate, production rule and the role ECS
    shifts traffic with; blue/green has a bake time (ECS requires it)."""
    config = p.get("deploymentConfiguration") or {}
    strategy = config.get("strategy") or "ROLLING"
    if strategy == "ROLLING":
        return []
    problems = []
    if strategy == "BLUE_GREEN" and config.get("bakeTimeInMinutes") in (None, ""):
        problems.append("blue/green needs bakeTimeInMinutes")
    for lb in _as_list(p.get("loadBalancers")):
        advanced = (lb or {}).get("advancedConfiguration") or {}
        missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not advanced.get(k)]
        if missing:
            problems.append(f"{strategy} target group {lb.get('targetGroupArn')} needs advancedConfiguration "
                            f"{', '.join(missing)}")
    return problems


def ecs_container_insights(p: dict, _: RuleContext) -> list[str]:
    settings = {s.get("name"): s.get("value") for s in _as_list(p.get("settings"))}
    return [] if settings.get("containerInsights") in ("enabled", "enhanced") else ["Container Insights must be on"]


def logs_retention(p: dict, _: RuleContext) -> list[str]:
    return [] if p.get("retentionInDays") else ["log groups need a retention period"]


# ----------------------------------------------------------------------------- VPC


def sg_rules_as_resources(p: dict, _: RuleContext) -> list[str]:
    # Branch stacks add rule resources to the base's groups; the provider documents that inline rules
    # on the same group revoke them (and the other way round).
    return [f"inline {kind} rules; declare aws.vpc.SecurityGroup{kind.capitalize()}Rule resources instead"
            for kind in ("ingress", "egress") if p.get(kind)]


# ----------------------------------------------------------------------------- IAM


def iam_no_wildcards(p: dict, _: RuleContext) -> list[str]:
    document = _json(p.get("policy")) or {}
    problems = []
    for statement in _as_list(document.get("Statement")):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        resources = _as_list(statement.get("Resource"))
        for action in actions:
            if "*" in action:
                problems.append(f"action {action} is a wildcard")
        if "*" in resources and not set(actions) <= ACCOUNT_WIDE_ACTIONS:
            problems.append(f"resource * for {', '.join(actions)}, which accept narrower resources")
    return problems


# ----------------------------------------------------------------------------- ALB


def alb_drop_invalid_headers(p: dict, _: RuleContext) -> list[str]:
    return [] if p.get("dropInvalidHeaderFields") is True else ["invalid header fields must be dropped"]


def alb_deletion_protection(p: dict, ctx: RuleContext) -> list[str]:
    if ctx.ephemeral or p.get("enableDeletionProtection") is True:
        return []
    return ["deletion protection must be on outside ephemeral stacks"]


def alb_https_redirect(resources: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """Stack-wide: once any listener serves HTTPS, every plain HTTP listener must redirect to it."""
    listeners = [(name, p) for type_, name, p in resources if type_ == "aws:lb/listener:Listener"]
    if not any(p.get("protocol") == "HTTPS" for _, p in listeners):
        return []
    problems = []
    for name, p in listeners:
        if p.get("protocol") != "HTTP":
            continue
        actions = _as_list(p.get("defaultActions"))
        if not any(a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS"
                   for a in actions):
            problems.append((name, "a certificate is set: plain HTTP must redirect to HTTPS"))
    return problems


# ----------------------------------------------------------------------------- RDS


def rds_encrypted(p: dict, _: RuleContext) -> list[str]:
    return [] if p.get("storageEncrypted") is True else ["storage must be encrypted"]


def rds_private(p: dict, _: RuleContext) -> list[str]:
    return ["the database must not be publicly accessible"] if p.get("publiclyAccessible") else []


def rds_managed_password(p: dict, _: RuleContext) -> list[str]:
    problems = [] if p.get("manageMasterUserPassword") is True else ["the master password must be AWS-managed"]
    if p.get("password"):
        problems.append("a master password is set in the program")
    return problems


def rds_backups(p: dict, _: RuleContext) -> list[str]:
    return [] if int(p.get("backupRetentionPeriod") or 0) >= 7 else ["backups must be kept 7 days or more"]


def rds_deletion_protection(p: dict, ctx: RuleContext) -> list[str]:
    if ctx.ephemeral or p.get("deletionProtection") is True:
        return []
    return ["deletion protection must be on outside ephemeral stacks"]


# ----------------------------------------------------------------------------- Kubernetes

WORKLOADS = ("kubernetes:apps/v1:Deployment",)


def k8s_restricted(p: dict, _: RuleContext) -> list[str]:
    from dockyard.targets.kubernetes.pod_security import restricted_violations

    pod = _pod_spec(p)
    return restricted_violations(pod) if pod is not None else ["no pod template"]


def k8s_probes(p: dict, _: RuleContext) -> list[str]:
    pod = _pod_spec(p) or {}
    return [f"container {c.get('name')} needs readiness and liveness probes" for c in pod.get("containers", [])
            if not (c.get("readinessProbe") and c.get("livenessProbe"))]


def k8s_resources(p: dict, _: RuleContext) -> list[str]:
    pod = _pod_spec(p) or {}
    problems = []
    for c in pod.get("containers", []):
        resources = c.get("resources") or {}
        if not (resources.get("requests") or {}).get("cpu") or not (resources.get("requests") or {}).get("memory"):
            problems.append(f"container {c.get('name')} needs cpu and memory requests")
        if not (resources.get("limits") or {}).get("memory"):
            problems.append(f"container {c.get('name')} needs a memory limit")
    return problems


def k8s_image_pinned(p: dict, _: RuleContext) -> list[str]:
    pod = _pod_spec(p) or {}
    return [f"container {c.get('name')} image {c.get('image')} is not pinned by digest"
            for c in [*pod.get("initContainers", []), *pod.get("containers", [])]
            if not DIGEST.search(str(c.get("image", "")))]


RULES: tuple[Rule, ...] = (
    Rule("ecr-immutable-tags", "ECR repositories have immutable tags", ECR, ecr_immutable_tags),
    Rule("ecr-scan-on-push", "ECR repositories scan images on push", ECR, ecr_scan_on_push),
    Rule("ecr-encrypted", "ECR repositories are KMS-encrypted", ECR, ecr_encrypted),
    Rule("ecr-lifecycle-spares-releases", "ECR lifecycle never expires release- tags",
         ("aws:ecr/lifecyclePolicy:LifecyclePolicy",), ecr_lifecycle_spares_releases),
    Rule("ecs-not-privileged", "ECS containers are not privileged", TASK, ecs_not_privileged),
    Rule("ecs-read-only-root", "ECS containers have a read-only root filesystem", TASK, ecs_read_only_root),
    Rule("ecs-non-root", "ECS containers run as a non-root user", TASK, ecs_non_root),
    Rule("ecs-no-plaintext-secrets", "No secrets in plain-text environment", TASK, ecs_no_plaintext_secrets),
    Rule("ecs-logging", "ECS containers log to CloudWatch", TASK, ecs_logging),
    Rule("ecs-image-pinned", "ECS images are pinned by digest", TASK, ecs_image_pinned),
    Rule("ecs-separate-roles", "Task role differs from execution role", TASK, ecs_separate_roles),
    Rule("ecs-service-private", "ECS services run in awsvpc without public IPs", ("aws:ecs/service:Service",),
         ecs_service_private),
    Rule("ecs-circuit-breaker", "ECS deployments roll back on failure (circuit breaker or alarms) outside "
         "ephemeral stacks", ("aws:ecs/service:Service",), ecs_circuit_breaker),
    Rule("ecs-alarms-roll-back", "Deployment alarms roll the deployment back", ("aws:ecs/service:Service",),
         ecs_alarms_roll_back),
    Rule("ecs-traffic-shift-wiring", "Blue/green, canary and linear services have their second target group, "
         "rules, role and bake time", ("aws:ecs/service:Service",), ecs_traffic_shift_wiring),
    Rule("ecs-container-insights", "ECS clusters have Container Insights", ("aws:ecs/cluster:Cluster",),
         ecs_container_insights),
    Rule("sg-rules-as-resources", "Security-group rules are resources of their own, never inline",
         ("aws:ec2/securityGroup:SecurityGroup",), sg_rules_as_resources),
    Rule("logs-retention", "Log groups have a retention period", ("aws:cloudwatch/logGroup:LogGroup",), logs_retention),
    Rule("iam-no-wildcards", "IAM policies name actions and resources", ("aws:iam/rolePolicy:RolePolicy",
                                                                          "aws:iam/policy:Policy"), iam_no_wildcards),
    Rule("alb-drop-invalid-headers", "Load balancers drop invalid header fields", ("aws:lb/loadBalancer:LoadBalancer",),
         alb_drop_invalid_headers),
    Rule("alb-deletion-protection", "Load balancers are deletion-protected outside ephemeral stacks",
         ("aws:lb/loadBalancer:LoadBalancer",), alb_deletion_protection),
    Rule("rds-encrypted", "Databases are encrypted", ("aws:rds/instance:Instance",), rds_encrypted),
    Rule("rds-private", "Databases are not public", ("aws:rds/instance:Instance",), rds_private),
    Rule("rds-managed-password", "Database passwords are AWS-managed", ("aws:rds/instance:Instance",),
         rds_managed_password),
    Rule("rds-backups", "Databases keep 7 days of backups", ("aws:rds/instance:Instance",), rds_backups),
    Rule("rds-deletion-protection", "Databases are deletion-protected outside ephemeral stacks",
         ("aws:rds/instance:Instance",), rds_deletion_protection),
    Rule("k8s-restricted", "Pods meet the restricted Pod Security Standard", WORKLOADS, k8s_restricted),
    Rule("k8s-probes", "Containers have readiness and liveness probes", WORKLOADS, k8s_probes, mandatory=False),
    Rule("k8s-resources", "Containers have requests and a memory limit", WORKLOADS, k8s_resources),
    Rule("k8s-image-pinned", "Pod images are pinned by digest", WORKLOADS, k8s_image_pinned),
)


# Rules that need to see the whole stack: name -> (description, check).
STACK_RULES: dict[str, tuple[str, Callable[[list[tuple[str, str, dict[str, Any]]]], list[tuple[str, str]]]]] = {
    "alb-https-redirect": ("With a certificate, HTTP redirects to HTTPS", alb_https_redirect),
}


def evaluate(resources: Iterable[tuple[str, str, dict[str, Any]]], ctx: RuleContext) -> list[Violation]:
    """Every violation among (type, name, props) resources."""
    resources = list(resources)
    found = []
    for type_, name, props in resources:
        for rule in RULES:
            if type_ in rule.types:
                found += [Violation(rule.name, name, m, rule.mandatory) for m in rule.check(props, ctx)]
    for rule_name, (_, check) in STACK_RULES.items():
        found += [Violation(rule_name, name, message, True) for name, message in check(resources)]
    return found
