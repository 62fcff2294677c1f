"""IAM documents for ECS tasks, as plain JSON text (pure, so tests can parse and check them)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

# ecr:GetAuthorizationToken is account-wide: AWS accepts no narrower resource for it.
ACCOUNT_WIDE_ACTIONS = frozenset({"ecr:GetAuthorizationToken"})
PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def ecs_tasks_trust_policy(account_id: str) -> str:
    """Only ECS tasks of this account may assume the role (confused-deputy guard)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }],
    }, sort_keys=True)


def secret_arn(ref: str, *, region: str, account_id: str, partition: str = "aws") -> str:
    """An SSM parameter name (/app/token) as its ARN; ARNs pass through."""
    if ref.startswith("arn:"):
        return ref
    return f"arn:{partition}:ssm:{region}:{account_id}:parameter{ref}"


_SECRETS_MANAGER_ARN = re.compile(r"^(arn:[^:]+:secretsmanager:[^:]*:\d{12}:secret:)([^:]+)(:.*)?$")
# Secrets Manager appends `-` and 6 random characters to every secret's ARN.
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def secret_resource_arn(ref: str, *, region: str, account_id: str, partition: str = "aws") -> str:
    """The ARN an execution role must be granted for a `secrets` reference.

    ECS accepts `arn:…:secret:<name>:<json-key>:<version-stage>:<version-id>`, but IAM matches
    the secret's own ARN; a partial ARN (without the 6-character suffix) needs `-??????`.
    """
    arn = secret_arn(ref, region=region, account_id=account_id, partition=partition)
    match = _SECRETS_MANAGER_ARN.match(arn)
    if not match:
        return arn
    prefix, name = match.group(1), match.group(2)
    return prefix + (name if _SECRET_SUFFIX.search(name) else f"{name}-??????")


def database_connect_policy(*, region: str, account_id: str, resource_id: str, user: str,
                            partition: str = "aws") -> str:
    """IAM database authentication as one database user of one instance."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ConnectAsOwnUser", "Effect": "Allow", "Action": "rds-db:connect",
        "Resource": f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{resource_id}/{user}"}]}, sort_keys=True)


def execution_policy(*, repository_arn: str | None, log_group_arn: str, secret_arns: Sequence[str]) -> str:
    """Pull this service's repository, write its log group, read the secrets it names: nothing else."""
    statements: list[dict] = []
    if repository_arn:
        statements.append({"Sid": "RegistryLogin", "Effect": "Allow",
                           "Action": sorted(ACCOUNT_WIDE_ACTIONS), "Resource": "*"})
        statements.append({"Sid": "PullOwnRepository", "Effect": "Allow", "Action": PULL_ACTIONS,
                           "Resource": repository_arn})
    statements.append({"Sid": "WriteOwnLogs", "Effect": "Allow",
                       "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": f"{log_group_arn}:log-stream:*"})
    ssm = sorted(a for a in secret_arns if ":ssm:" in a)
    secretsmanager = sorted(a for a in secret_arns if ":secretsmanager:" in a)
    if ssm:
        statements.append({"Sid": "ReadNamedParameters", "Effect": "Allow", "Action": ["ssm:GetParameters"],
                           "Resource": ssm})
    if secretsmanager:
        statements.append({"Sid": "ReadNamedSecrets", "Effect": "Allow",
                           "Action": ["secretsmanager:GetSecretValue"], "Resource": secretsmanager})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


# ELB's Describe calls accept no narrower resource than "*".
LOAD_BALANCING_READ_ACTIONS = ("elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
                               "elasticloadbalancing:DescribeTargetGroups",
                               "elasticloadbalancing:DescribeTargetHealth")


def ecs_service_trust_policy(account_id: str) -> str:
    """ECS itself (not its tasks) assumes the role that shifts a service's traffic; this account only."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }],
    }, sort_keys=True)


def traffic_shift_policy(*, target_group_arns: Sequence[str], rule_arns: Sequence[str]) -> str:
    """Blue/green, canary, linear: register tasks in the service's two target groups and move the weights
    of its own listener rules. Nothing else on the load balancer."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadLoadBalancing", "Effect": "Allow", "Action": list(LOAD_BALANCING_READ_ACTIONS),
         "Resource": "*"},
        {"Sid": "RegisterInOwnGroups", "Effect": "Allow",
         "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
         "Resource": sorted(target_group_arns)},
        {"Sid": "ShiftOwnRules", "Effect": "Allow", "Action": ["elasticloadbalancing:ModifyRule"],
         "Resource": sorted(rule_arns)},
    ]}, sort_keys=True)
