"""The app stacks: deploy the pinned images of a release to ECS Fargate or Kubernetes."""

from __future__ import annotations

import pulumi

from infra.config import AppSettings


def run(settings: AppSettings) -> None:
    raise pulumi.RunError(f"stack {settings.stack}: dockyard:role app is not available in this version yet")
