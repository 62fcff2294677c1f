"""`dockyard build`: up the registry stack, which builds, pushes and publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.errors import BadInput
from dockyard.release.context import Context
from dockyard.release.project import REGISTRY


@dataclass
class BuildResult:
    images: dict[str, str]
    release_parameter: str | None
    changes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"stack": REGISTRY, "images": self.images, "releaseParameter": self.release_parameter,
                "changes": self.changes}

    def lines(self) -> list[str]:
        lines = [f"Registry published {len(self.images)} image(s):"]
        lines += [f"  {service}: {ref}" for service, ref in sorted(self.images.items())]
        lines.append("Next: dockyard promote <env> --from registry")
        return lines


def build(ctx: Context) -> BuildResult:
    env = ctx.project.environment(REGISTRY)
    if not env.is_registry:
        raise BadInput(f"Pulumi.{REGISTRY}.yaml does not have dockyard:role registry")
    ctx.log("Building the registry stack...")
    result = ctx.deployer.up(REGISTRY)
    return BuildResult(images=dict(result.outputs.get("images") or {}),
                       release_parameter=result.outputs.get("releaseParameter"), changes=result.changes)
