"""ECS branch stacks: each gets a listener of its own on the base's load balancer, on a port that stays its own."""

from __future__ import annotations

from typing import Any

from dockyard import naming
from dockyard.errors import Conflict
from dockyard.release.context import Context
from dockyard.release.project import Environment, raw_stack_config


def listener_port(ctx: Context, base: Environment, stack: str) -> int | None:
    """The port of the branch's own listener on the base's load balancer, free of collisions.

    A port once chosen stays with the branch: its config file keeps it, and from a clean checkout
    the listener tagged with the stack's name gives it back. A new branch takes its preferred
    port (from its name) or the next free one. None: nothing to route (no ALB, or a worker-only
    base), and the program needs no port.
    """
    balancer = ctx.deployer.outputs(base.name).get("loadBalancer") or {}
    if not balancer.get("arn"):
        return None
    elbv2 = ctx.aws.client("elbv2")
    listeners = [listener for page in elbv2.get_paginator("describe_listeners").paginate(
        LoadBalancerArn=balancer["arn"]) for listener in page["Listeners"]]
    ports = {listener["Port"]: listener["ListenerArn"] for listener in listeners}
    config_file = ctx.project.config_file(stack)
    if config_file.is_file():
        chosen = (raw_stack_config(config_file) or {}).get("dockyard:listenerPort")
        if chosen is not None:
            return int(chosen)
    own = _own_listener_port(elbv2, ports, stack)
    if own is not None:
        return own
    if len(listeners) >= naming.ALB_LISTENERS_MAX:
        raise Conflict(f"load balancer {balancer['arn'].split('/')[-2]} already has {len(listeners)} listeners, "
                       f"the most an ALB takes: no port for {stack}; free one with `dockyard branch gc`",
                       hint="dockyard branch gc --idle-for 7d (or --keep BRANCH... with the open branches)")
    preferred = naming.branch_listener_port(stack)
    span = naming.BRANCH_PORT_LAST - naming.BRANCH_PORT_FIRST + 1
    for offset in range(span):
        port = naming.BRANCH_PORT_FIRST + (preferred - naming.BRANCH_PORT_FIRST + offset) % span
        if port not in ports:
            return port
    raise Conflict(f"every preview port {naming.BRANCH_PORT_FIRST}-{naming.BRANCH_PORT_LAST} is taken on load "
                   f"balancer {balancer['arn']}; free one with `dockyard branch gc`")


def _own_listener_port(elbv2: Any, ports: dict[int, str], stack: str) -> int | None:
    by_arn = {arn: port for port, arn in ports.items()}
    arns = list(by_arn)
    for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 resources
        for description in elbv2.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
            tags = {t["Key"]: t["Value"] for t in description.get("Tags", [])}
            if tags.get(naming.LISTENER_STACK_TAG) == stack:
                return by_arn[description["ResourceArn"]]
    return None
