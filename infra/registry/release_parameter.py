"""The registry's release manifest, published as an SSM parameter app stacks and the command read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard.images import ImageRef
from dockyard.manifest import Release


def registry_manifest(images: Mapping[str, str]) -> str:
    """The manifest text for a set of images. No timestamp or commit: the text changes only
    when an image does, so a `pulumi up` that changes nothing writes nothing."""
    return Release(images={s: ImageRef.parse_pinned(r) for s, r in images.items()}, source="registry").to_json()


@dataclass(frozen=True)
class ReleaseParameterArgs:
    parameter_name: str
    images: pulumi.Input[Mapping[str, str]]
    protect: bool = True


class ReleaseParameter(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ReleaseParameterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:registry:ReleaseParameter", name, None, opts)
        parameter = aws.ssm.Parameter(
            f"{name}-parameter",
            name=args.parameter_name,
            type="String",
            # Intelligent-Tiering moves to the advanced tier only when a manifest outgrows 4 KB.
            tier="Intelligent-Tiering",
            value=pulumi.Output.from_input(args.images).apply(registry_manifest),
            description="dockyard release manifest: the pinned image of each service",
            # The manifest outlives the stack: protected, and kept if the stack is destroyed.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.name = parameter.name
        self.register_outputs({"name": self.name})
