"""One ECR repository per service: immutable tags, scan on push, KMS encryption, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard import naming
from dockyard.registry.lifecycle import lifecycle_policy


@dataclass(frozen=True)
class EcrRepositoryArgs:
    service: str
    keep_images: int
    untagged_expiry_days: int
    protect: bool = True


class EcrRepository(pulumi.ComponentResource):
    url: pulumi.Output[str]
    registry_id: pulumi.Output[str]

    def __init__(self, name: str, args: EcrRepositoryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:registry:EcrRepository", name, None, opts)
        # Repositories hold every released digest: protected, and kept if the stack is destroyed.
        keep = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        repo = aws.ecr.Repository(
            f"{name}-repo",
            name=naming.ecr_repository(args.service),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            force_delete=False,
            opts=keep,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repo.name,
            policy=lifecycle_policy(args.keep_images, args.untagged_expiry_days),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = repo.repository_url
        self.registry_id = repo.registry_id
        self.register_outputs({"url": self.url, "registryId": self.registry_id})
