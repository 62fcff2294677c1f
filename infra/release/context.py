"""What every command works with: the project, the engine, AWS clients, who is acting and when."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dockyard.errors import BadInput, DockyardError
from dockyard.manifest import Release
from dockyard.release.engine import Deployer
from dockyard.release.registries.oci import RegistryClients
from dockyard.release.project import REGISTRY, Environment, Project
from dockyard.release.stores.base import ReleaseStore


class AwsClients:
    """boto3 clients made on first use, with boto3's normal configuration (AWS_REGION, AWS_ENDPOINT_URL...)."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = f"{service}@{region or ''}"
        if key not in self._clients:
            import boto3

            # botocore reads AWS_DEFAULT_REGION; AWS_REGION (what the AWS CLI v2 and SDKs use) counts too.
            self._clients[key] = boto3.client(service, region_name=region or os.environ.get("AWS_REGION") or None)
        return self._clients[key]

    def ssm(self) -> Any:
        return self.client("ssm")

    def ecs(self) -> Any:
        return self.client("ecs")


def current_user() -> str:
    return os.environ.get("DOCKYARD_USER") or os.environ.get("GITHUB_ACTOR") or getpass.getuser()


@dataclass
class Context:
    project: Project
    deployer_factory: Callable[[], Deployer]
    aws: AwsClients = field(default_factory=AwsClients)
    registries: RegistryClients = field(default_factory=RegistryClients)
    user: str = field(default_factory=current_user)
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    log: Callable[[str], None] = lambda _: None
    confirm: Callable[[str], bool] | None = None  # None: no terminal to ask on
    health_timeout: float = 60.0
    # ECS deployments: one DescribeServiceDeployments per interval while they run; give up after ecs_timeout.
    ecs_poll_seconds: float = 10.0
    ecs_timeout: float = 7200.0
    sleep: Callable[[float], None] = time.sleep
    verifier: Any = None  # the trust gate's signature checker; None: cosign, made on first use
    _deployer: Deployer | None = None

    @property
    def deployer(self) -> Deployer:
        if self._deployer is None:
            self._deployer = self.deployer_factory()
        return self._deployer

    def timestamp(self) -> str:
        return self.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def store(self, env: Environment) -> ReleaseStore:
        return self.project.store(env, self.aws.ssm)


@dataclass(frozen=True)
class SourceRelease:
    """A source's current manifest, and how to name it in the release it seeds."""

    name: str
    release: Release
    label: str  # "registry:v14", "dev:v3", or "dev" for a stack-following environment
    version: int | None


def read_source(ctx: Context, name: str) -> SourceRelease:
    """SRC's current manifest: its newest release, or for a stack-following one what its stack deployed."""
    env = ctx.project.environment(name)
    if env.store_kind == "stack":
        outputs = ctx.deployer.outputs(name)
        images = outputs.get("images")
        if not images:
            raise BadInput(f"stack {name} has no images output yet", hint=f"deploy it first: dockyard deploy {name}"
                           if name != REGISTRY else "build it first: dockyard build")
        release = Release.from_dict({"schema": 1, "images": images}, where=f"stack {name} output 'images'")
        return SourceRelease(name=name, release=release, label=name, version=None)
    current = ctx.store(env).current()
    if current is None:
        hint = "dockyard build publishes it" if name == REGISTRY else f"promote into it first: dockyard promote {name} --from registry"
        raise BadInput(f"{name} has no release yet", hint=hint)
    return SourceRelease(name=name, release=current.release, label=f"{name}:v{current.version}",
                         version=current.version)


def require_confirmation(ctx: Context, question: str, *, yes: bool) -> None:
    if yes:
        return
    if ctx.confirm is None:
        raise BadInput("no terminal to confirm on", hint="pass --yes to proceed without asking")
    if not ctx.confirm(question):
        raise DockyardError("declined; nothing was written")
