"""The network an app stack runs in: a new VPC over two or more zones, or an existing one."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard.config import NetworkSettings


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Public and private subnets of equal size: the VPC split into 2 x zones blocks (rounded up)."""
    network = ipaddress.ip_network(cidr)
    blocks = 2 * zones
    new_prefix = network.prefixlen + (blocks - 1).bit_length()
    subnets = [str(s) for s in network.subnets(new_prefix=new_prefix)][:blocks]
    return subnets[:zones], subnets[zones:]


@dataclass(frozen=True)
class NetworkArgs:
    settings: NetworkSettings
    availability_zones: tuple[str, ...]  # resolved by the caller; only the first settings.availability_zones used
    # Keep the VPC and private subnets on delete: a retained database's interfaces sit in them.
    retain_private: bool = False


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:Network", name, None, opts)
        settings = args.settings
        if settings.existing:
            vpc = aws.ec2.get_vpc_output(id=settings.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self))
            self.vpc_id = pulumi.Output.from_input(settings.vpc_id)
            self.cidr = vpc.cidr_block
            self.public_subnet_ids = pulumi.Output.from_input(list(settings.public_subnet_ids))
            self.private_subnet_ids = pulumi.Output.from_input(list(settings.private_subnet_ids))
        else:
            self._create(name, settings, args.availability_zones, args.retain_private)
        self.register_outputs({"vpcId": self.vpc_id, "cidr": self.cidr, "publicSubnetIds": self.public_subnet_ids,
                               "privateSubnetIds": self.private_subnet_ids})

    def _create(self, name: str, settings: NetworkSettings, zones: tuple[str, ...], retain: bool) -> None:
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=retain)
        zones = zones[: settings.availability_zones]
        public_cidrs, private_cidrs = subnet_cidrs(settings.cidr, len(zones))
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=settings.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": name}, opts=kept)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                           routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}], opts=child)
        public, private, nats = [], [], []
        for i, zone in enumerate(zones):
            subnet = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=public_cidrs[i],
                                    availability_zone=zone, map_public_ip_on_launch=False,
                                    tags={"Name": f"{name}-public-{zone}", "dockyard:tier": "public"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=public_routes.id,
                                          opts=child)
            public.append(subnet)
        # One NAT gateway by default: the cheap choice; raise natGateways for zone-independent egress.
        for i in range(min(settings.nat_gateways, len(zones))):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", opts=child)
            nats.append(aws.ec2.NatGateway(f"{name}-nat-{i}", subnet_id=public[i].id, allocation_id=eip.id,
                                           opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway])))
        for i, zone in enumerate(zones):
            subnet = aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=private_cidrs[i],
                                    availability_zone=zone,
                                    tags={"Name": f"{name}-private-{zone}", "dockyard:tier": "private"}, opts=kept)
            routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % len(nats)].id}] if nats else []
            table = aws.ec2.RouteTable(f"{name}-private-{i}", vpc_id=vpc.id, routes=routes, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=child)
            private.append(subnet)
        self.vpc_id = vpc.id
        self.cidr = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
