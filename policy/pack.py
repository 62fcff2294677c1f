"""Wires the rules of rules.py into pulumi-policy policies; no rule logic lives here."""

from __future__ import annotations

import os
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.rules import RULES, STACK_RULES, Rule, RuleContext


def rule_context(config: Any) -> RuleContext:
    """Branch stacks (`branch-*`) are ephemeral; a stack can also say so in the policy config."""
    stack = os.environ.get("PULUMI_STACK", "")
    return RuleContext(ephemeral=stack.startswith("branch-") or bool((config or {}).get("ephemeral", False)))


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in rule.types:
            for message in rule.check(dict(args.props), rule_context(args.get_config())):
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY)


def _stack_policy(name: str, description: str, check: Any) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [(r.resource_type, r.name, dict(r.props)) for r in args.resources]
        by_name = {r.name: r.urn for r in args.resources}
        for resource, message in check(resources):
            report_violation(message, by_name.get(resource))

    return StackValidationPolicy(name=name, description=description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


def policies() -> list[Any]:
    return [*map(_resource_policy, RULES),
            *(_stack_policy(name, description, check) for name, (description, check) in STACK_RULES.items())]
