"""Run the dockyard program under Pulumi mocks and record everything it registers.

One realistic set of mocks serves every unit test: ECR repository URLs and
registry ids, image digests derived from what was pushed, SSM parameters,
StackReference outputs and the AWS invokes the program makes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ACCOUNT = "123456789012"
REGION = "us-east-1"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@dataclass
class Registered:
    """One resource registration as the engine would see it."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    custom: bool
    protect: bool
    retain_on_delete: bool
    parent: str
    dependencies: tuple[str, ...] = ()  # URNs of depends_on (and of resources whose outputs it reads)


class DockyardMocks(pulumi.runtime.Mocks):
    """Stands in for the AWS, Docker and Kubernetes providers and for other stacks."""

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
                 parameters: Mapping[str, tuple[str, int]] | None = None) -> None:
        self.stack_outputs = dict(stack_outputs or {})
        self.parameters = dict(parameters or {})
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self.created: list[str] = []  # type tokens, in registration order

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.created.append(args.typ)
        inputs = dict(args.inputs)
        state = dict(inputs)
        arn_base = f"arn:aws:{args.typ.split(':')[1].split('/')[0]}:{REGION}:{ACCOUNT}"
        if args.typ == "aws:ecr/repository:Repository":
            state.update(repositoryUrl=f"{ECR_HOST}/{inputs['name']}", registryId=ACCOUNT,
                         arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{inputs['name']}")
        elif args.typ == "docker:index/image:Image":
            name = inputs["imageName"]
            repository = name.rsplit(":", 1)[0]
            state.update(repoDigest=f"{repository}@{fake_digest(name)}", imageName=name)
        elif args.typ == "pulumi:pulumi:StackReference":
            outputs = self.stack_outputs.get(inputs["name"])
            state.update(outputs=dict(outputs or {}), secretOutputNames=[])
        elif args.typ == "aws:ssm/parameter:Parameter":
            state.update(arn=f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{inputs['name']}", version=1)
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            state.update(arn=f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{inputs['name']}/1",
                         dnsName=f"{inputs['name']}-1234567890.{REGION}.elb.amazonaws.com")
        elif args.typ == "aws:lb/listener:Listener":
            state.update(arn=f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/{args.name}/1/2")
        elif args.typ == "aws:lb/targetGroup:TargetGroup":
            state.update(arn=f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{inputs['name']}/1")
        elif args.typ == "aws:ecs/cluster:Cluster":
            state.update(arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{inputs['name']}")
        elif args.typ == "aws:ecs/taskDefinition:TaskDefinition":
            state.update(arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{inputs['family']}:1", revision=1)
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state.update(arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{inputs['name']}")
        elif args.typ == "aws:iam/role:Role":
            state.update(arn=f"arn:aws:iam::{ACCOUNT}:role/{inputs['name']}")
        elif args.typ == "aws:rds/instance:Instance":
            state.update(address=f"{inputs['identifier']}.c0ffee.{REGION}.rds.amazonaws.com", port=5432,
                         resourceId="db-" + hashlib.sha256(inputs["identifier"].encode()).hexdigest()[:26].upper(),
                         masterUserSecrets=[{"secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                                                          f"rds!db-{inputs['identifier']}-AbCdEf",
                                             "secretStatus": "active", "kmsKeyId": "alias/aws/secretsmanager"}])
        elif args.typ == "aws:ec2/vpc:Vpc":
            return "vpc-0a1b2c3d4e5f60718", state
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            return "sg-" + hashlib.sha256(args.name.encode()).hexdigest()[:17], state
        elif args.typ == "aws:ec2/subnet:Subnet":
            return "subnet-" + hashlib.sha256(args.name.encode()).hexdigest()[:17], state
        else:
            state.setdefault("arn", f"{arn_base}:{args.name}")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list] | dict[str, Any]:
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "mock-ecr-password", "proxyEndpoint": f"https://{ECR_HOST}",
                    "authorizationToken": "QVdTOm1vY2s=", "expiresAt": "2030-01-01T00:00:00Z", "id": REGION}
        if args.token == "aws:ssm/getParameter:getParameter":
            name = args.args["name"]
            if name not in self.parameters:
                raise Exception(f"reading SSM Parameter ({name}): couldn't find resource (ParameterNotFound)")
            value, version = self.parameters[name]
            return {"name": name, "value": value, "insecureValue": value, "version": version, "type": "String",
                    "arn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}", "id": name}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{REGION}{z}" for z in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": REGION}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test", "userId": "AIDA", "id": ACCOUNT}
        if args.token == "aws:ssm/getParametersByPath:getParametersByPath":
            path = args.args["path"].rstrip("/") + "/"
            names = sorted(n for n in self.parameters if n.startswith(path) and "/" not in n[len(path):])
            return {"path": args.args["path"], "names": names, "values": [self.parameters[n][0] for n in names],
                    "types": ["String"] * len(names), "arns": [], "id": args.args["path"]}
        if args.token == "aws:ec2/getVpc:getVpc":
            return {"id": args.args["id"], "cidrBlock": "172.31.0.0/16", "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        return {}


def unwrap_secrets(value: Any) -> Any:
    """Secret inputs arrive wrapped in Pulumi's secret signature; tests read the plain values."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap_secrets(value["value"])
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping the options mocks do not see (protect, retainOnDelete, parent)."""

    def __init__(self, mocks: DockyardMocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources.get(response.urn)
            self.registered.append(Registered(
                type=request.type,
                name=request.name,
                inputs=unwrap_secrets(rpc.deserialize_properties(request.object)),
                state=dict(registration.state) if registration else {},
                custom=request.custom,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                parent=request.parent,
                dependencies=tuple(request.dependencies),
            ))
        return response


@dataclass
class ProgramRun:
    resources: list[Registered]
    outputs: dict[str, Any]
    mocks: DockyardMocks
    errors: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Registered:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


def config_values(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine passes it: strings, with objects and lists as JSON text."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def run_program(program: Callable[[], None], *, config: Mapping[str, Any], stack: str,
                mocks: DockyardMocks | None = None, secret_keys: tuple[str, ...] = (),
                preview: bool = False, organization: str = "organization") -> ProgramRun:
    """Run `program` as `pulumi up` would, under mocks; return what it registered and exported."""
    mocks = mocks or DockyardMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(config_values(config), list(secret_keys))
    # A fresh root stack per run, so exports of an earlier run never leak into this one.
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="dockyard", stack=stack, preview=preview, monitor=monitor,
                             organization=organization)
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()
    outputs: dict[str, Any] = {}

    def body() -> Any:
        program()
        exports = dict(runtime_settings.get_root_resource().outputs)

        async def resolve() -> None:
            for key, value in exports.items():
                outputs[key] = await pulumi.Output.from_input(value).future()

        return resolve()

    _sync_await(run_pulumi_func(body))
    return ProgramRun(resources=monitor.registered, outputs=outputs, mocks=mocks)
