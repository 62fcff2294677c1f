"""Shared inputs for app-stack tests: pinned images, manifests and the stacks' config."""

from __future__ import annotations

import json

from dockyard.program import main
from tests.support.pulumi_harness import ECR_HOST, DockyardMocks, fake_digest, run_program

REGISTRY = "organization/dockyard/registry"
IMAGES = {s: f"{ECR_HOST}/dockyard/{s}@{fake_digest(s + '-v1')}" for s in ("web", "worker")}
SERVICES = {"web": {"port": 8080, "desiredCount": 2, "maxCount": 6},
            "worker": {"healthCheckCommand": ["python", "worker.py", "--check"], "desiredCount": 1}}

BUILD_TYPES = {"aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy",
               "docker:index/image:Image", "docker:index/registryImage:RegistryImage"}


def manifest(images: dict[str, str] | None = None, **extra) -> str:
    return json.dumps({"schema": 1, "images": images or IMAGES, "source": "registry:v3", **extra})


def app(stack: str = "dev", *, mocks: DockyardMocks | None = None, secret_keys=(), organization="organization",
        **config):
    config.setdefault("dockyard:services", SERVICES)
    config.setdefault("dockyard:imageSource", "stack")
    mocks = mocks or DockyardMocks(stack_outputs={REGISTRY: {"images": IMAGES}})
    return run_program(main, config={"dockyard:role": "app", **config}, stack=stack, mocks=mocks,
                       secret_keys=secret_keys, organization=organization)


def task_containers(run) -> dict[str, dict]:
    """service -> its container definition, parsed from the registered task definitions."""
    containers = {}
    for task in run.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = json.loads(task.inputs["containerDefinitions"])
        containers[container["name"]] = container
    return containers
