"""The application load balancer: a stack's own, or a listener of its own on a base stack's."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard import naming

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Blue/green, canary and linear deployments: the new revision answers here before it takes production
# traffic (ECS points each service's test rule at it). HTTPS on 8443 when the stack has a certificate.
TEST_PORTS = {"HTTP": 8080, "HTTPS": 8443}
LISTENER_STACK_TAG = naming.LISTENER_STACK_TAG
NOT_FOUND = {"type": "fixed-response",
             "fixed_response": {"content_type": "text/plain", "message_body": "no route", "status_code": "404"}}


@dataclass(frozen=True)
class LoadBalancerArgs:
    stack: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    certificate_arn: str | None
    ephemeral: bool
    test_listener: bool = False  # a service deploys blue/green, canary or linear


class LoadBalancer(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    test_listener_arn: pulumi.Output[str] | None
    url: pulumi.Output[str]

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        https = args.certificate_arn is not None
        ports = [80, 443] if https else [80]
        test_port = TEST_PORTS["HTTPS" if https else "HTTP"]
        if args.test_listener:
            ports.append(test_port)
        # No inline rules: branch stacks add rule resources to this group, and the provider documents
        # that inline rules and rule resources on one group revoke each other.
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description="dockyard load balancer: HTTP(S) from anywhere",
            opts=child)
        for p in ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-clients-{p}", security_group_id=group.id, ip_protocol="tcp", from_port=p, to_port=p,
                cidr_ipv4="0.0.0.0/0", description=f"clients on {p}", opts=child)
        # Only towards the tasks inside the VPC.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-targets", security_group_id=group.id, ip_protocol="tcp", from_port=0, to_port=65535,
            cidr_ipv4=args.vpc_cidr, description="targets in the VPC", opts=child)
        balancer = aws.lb.LoadBalancer(
            f"{name}-alb", name=naming.load_balancer(args.stack), load_balancer_type="application",
            internal=False, security_groups=[group.id], subnets=args.public_subnet_ids,
            drop_invalid_header_fields=True, enable_deletion_protection=not args.ephemeral,
            idle_timeout=60, opts=child)
        if https:
            aws.lb.Listener(f"{name}-http", load_balancer_arn=balancer.arn, port=80, protocol="HTTP",
                                   default_actions=[{"type": "redirect", "redirect": {
                                       "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}], opts=child)
            main = aws.lb.Listener(f"{name}-https", load_balancer_arn=balancer.arn, port=443, protocol="HTTPS",
                                   ssl_policy=TLS_POLICY, certificate_arn=args.certificate_arn,
                                   default_actions=[NOT_FOUND], opts=child)
        else:
            main = aws.lb.Listener(f"{name}-http", load_balancer_arn=balancer.arn, port=80, protocol="HTTP",
                                   default_actions=[NOT_FOUND], opts=child)
        self.test_listener_arn = None
        if args.test_listener:
            test = aws.lb.Listener(
                f"{name}-test", load_balancer_arn=balancer.arn, port=test_port, protocol="HTTPS" if https else "HTTP",
                ssl_policy=TLS_POLICY if https else None, certificate_arn=args.certificate_arn,
                default_actions=[NOT_FOUND], opts=child)
            self.test_listener_arn = test.arn
        self.arn = balancer.arn
        self.dns_name = balancer.dns_name
        self.security_group_id = group.id
        self.listener_arn = main.arn
        self.url = balancer.dns_name.apply(lambda dns: f"{'https' if https else 'http'}://{dns}")
        self.register_outputs({"arn": self.arn, "dnsName": self.dns_name, "securityGroupId": self.security_group_id,
                               "listenerArn": self.listener_arn, "testListenerArn": self.test_listener_arn,
                               "url": self.url})


@dataclass(frozen=True)
class BranchListenerArgs:
    stack: str
    load_balancer_arn: str
    dns_name: str
    security_group_id: str
    port: int


class BranchListener(pulumi.ComponentResource):
    """A shared stack's own port on the base's load balancer: its rules never touch the base's listener.

    Always plain HTTP: a base's certificate names the base's host, never `<alb dns>:<port>`, so TLS
    on a preview port could not be verified by anyone.
    """

    listener_arn: pulumi.Output[str]
    url: str

    def __init__(self, name: str, args: BranchListenerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:BranchListener", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        port = args.port
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-ingress", security_group_id=args.security_group_id, ip_protocol="tcp", from_port=port,
            to_port=port, cidr_ipv4="0.0.0.0/0", description=f"dockyard {args.stack} preview", opts=child)
        # The tag lets `dockyard branch up` recognise the branch's own listener from a clean checkout.
        listener = aws.lb.Listener(
            f"{name}-listener", load_balancer_arn=args.load_balancer_arn, port=port, protocol="HTTP",
            default_actions=[NOT_FOUND], tags={LISTENER_STACK_TAG: args.stack}, opts=child)
        self.listener_arn = listener.arn
        self.url = f"http://{args.dns_name}:{port}"
        self.register_outputs({"listenerArn": self.listener_arn, "url": self.url})
