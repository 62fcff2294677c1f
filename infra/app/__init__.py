"""The app stacks: deploy the pinned images of a release to ECS Fargate, Kubernetes or Nomad. Never builds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pulumi

from dockyard import targets
from dockyard.app import image_source
from dockyard.config import AppSettings

# Branch stacks run the least that still works: one task, the smallest Fargate size.
EPHEMERAL_SIZE = {"cpu": 256, "memory": 512, "desired_count": 1, "min_count": 1, "max_count": 2}


def sized_for(settings: AppSettings) -> AppSettings:
    if not settings.ephemeral:
        return settings
    services = {name: replace(service, **EPHEMERAL_SIZE) for name, service in settings.services.items()}
    return replace(settings, services=services)


def run(settings: AppSettings, project_dir: Path) -> None:
    settings = sized_for(settings)
    release = image_source.resolve(settings, project_dir)
    pulumi.export("images", release.images)
    pulumi.export("release", {"source": release.source, "version": release.version})
    targets.of(settings).program(settings, release, project_dir)
