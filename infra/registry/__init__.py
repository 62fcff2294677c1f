"""The registry stack: repositories, images (built or recorded) and the published release manifest."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from infra.config import RegistrySettings
from infra.errors import ConfigError
from infra.images import ImageRef
from infra.registry.image import ImageBuild, ServiceImage, ServiceImageArgs
from infra.registry.release_parameter import ReleaseParameter, ReleaseParameterArgs
from infra.registry.repository import EcrRepository, EcrRepositoryArgs

# Build argument every image receives, so `/version` can tell which commit it was built from.
COMMIT_ARG = "COMMIT_SHA"


def current_commit() -> str:
    return os.environ.get("DOCKYARD_COMMIT") or os.environ.get("GITHUB_SHA") or "unknown"


def resolve_builds(settings: RegistrySettings, project_dir: Path, commit: str) -> dict[str, ImageBuild]:
    """The services this run builds, with paths checked before any resource is registered."""
    builds = {}
    for service in settings.services:
        if service in settings.prebuilt:
            continue
        build = settings.builds[service]
        context = (project_dir / build.context).resolve()
        dockerfile = (project_dir / build.dockerfile).resolve()
        if not context.is_dir():
            raise ConfigError(f"dockyard:services.{service}.context: {build.context} is not a directory",
                              hint=f"create images/{service}/ or record an image with dockyard:prebuilt.{service}")
        if not dockerfile.is_file():
            raise ConfigError(f"dockyard:services.{service}.dockerfile: {build.dockerfile} does not exist")
        builds[service] = ImageBuild(settings=build, context=context, dockerfile=dockerfile,
                                     build_args={COMMIT_ARG: commit, **build.build_args})
    return builds


def run(settings: RegistrySettings, project_dir: Path) -> None:
    try:
        builds = resolve_builds(settings, project_dir, current_commit())
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None

    repositories: dict[str, EcrRepository] = {}
    if settings.registry == "ecr":
        for service in settings.services:
            repositories[service] = EcrRepository(service, EcrRepositoryArgs(
                service=service, keep_images=settings.keep_images,
                untagged_expiry_days=settings.untagged_expiry_days))

    previous: pulumi.Output[dict] | None = None
    if builds:
        # This stack's own last `images` output: the cache each build starts from.
        own = pulumi.StackReference("self", stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/"
                                                         f"{pulumi.get_stack()}")
        previous = own.get_output("images").apply(lambda images: images or {})

    images: dict[str, pulumi.Output[str]] = {}
    for service in settings.services:
        repository = repositories.get(service)
        image = ServiceImage(service, ServiceImageArgs(
            service=service,
            build=builds.get(service),
            prebuilt=settings.prebuilt.get(service),
            repository_url=repository.url if repository else None,
            registry_id=repository.registry_id if repository else None,
            cache_from=previous.apply(lambda p, s=service: p.get(s)) if previous is not None else None,
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
    # External registry: the repository part of each recorded reference.
    return pulumi.Output.from_input({s: ImageRef.parse(settings.prebuilt[s]).name for s in settings.services})
