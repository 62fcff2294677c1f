"""The registry stack: repositories, images (built or recorded) and the published release manifest."""

from __future__ import annotations

from pathlib import Path

import pulumi

from dockyard.build_inputs import BuildInputs, resolve_build
from dockyard.config import RegistrySettings
from dockyard.errors import ConfigError
from dockyard.images import ImageRef
from dockyard.registry.image import ServiceImage, ServiceImageArgs
from dockyard.registry.release_parameter import ReleaseParameter, ReleaseParameterArgs
from dockyard.registry.repository import EcrRepository, EcrRepositoryArgs


def resolve_builds(settings: RegistrySettings, project_dir: Path) -> dict[str, BuildInputs]:
    """The services this run builds, with paths checked before any resource is registered."""
    builds = {}
    for service in settings.services:
        if service in settings.prebuilt:
            continue
        build = settings.builds[service]
        if build.builder == "packer":
            raise ConfigError(f"dockyard:services.{service}.builder is 'packer', which the registry program "
                              "cannot run (it builds Dockerfiles with pulumi-docker)",
                              hint=f"run `dockyard build --local`: it builds with Packer and records the pushed "
                                   f"digest as dockyard:prebuilt.{service}")
        builds[service] = resolve_build(project_dir, service, build)
    return builds


def run(settings: RegistrySettings, project_dir: Path) -> None:
    try:
        builds = resolve_builds(settings, project_dir)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None

    repositories: dict[str, EcrRepository] = {}
    if settings.registry == "ecr":
        for service in settings.services:
            repositories[service] = EcrRepository(service, EcrRepositoryArgs(
                service=service, keep_images=settings.keep_images,
                untagged_expiry_days=settings.untagged_expiry_days))

    images: dict[str, pulumi.Output[str]] = {}
    for service in settings.services:
        repository = repositories.get(service)
        image = ServiceImage(service, ServiceImageArgs(
            service=service,
            project_dir=project_dir,
            build=builds.get(service),
            prebuilt=settings.prebuilt.get(service),
            repository_url=(repository.url if repository else
                            settings.oci.repository(service) if settings.oci else None),
        ))
        images[service] = image.ref

    all_images = pulumi.Output.all(**images) if images else pulumi.Output.from_input({})
    pulumi.export("images", all_images)
    pulumi.export("repositories", _repository_urls(settings, repositories))
    if settings.publish:
        parameter = ReleaseParameter("release", ReleaseParameterArgs(
            parameter_name=settings.release_parameter, images=all_images))
        pulumi.export("releaseParameter", parameter.name)
    else:
        pulumi.export("releaseParameter", None)


def _repository_urls(settings: RegistrySettings, repositories: dict[str, EcrRepository]) -> pulumi.Output[dict]:
    if repositories:
        return pulumi.Output.all(**{s: r.url for s, r in repositories.items()})
    if settings.oci is not None:
        return pulumi.Output.from_input({s: settings.oci.repository(s) for s in settings.services})
    # External registry: the repository part of each recorded reference.
    return pulumi.Output.from_input({s: ImageRef.parse(settings.prebuilt[s]).name for s in settings.services})
