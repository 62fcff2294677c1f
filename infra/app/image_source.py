"""Where an app stack's images come from: the registry stack, an SSM parameter, or the file store.

Whatever the source, every configured service must be present and pinned by
digest, or the program stops with one line that names the cause.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from dockyard.config import AppSettings
from dockyard.errors import DockyardError, ImageRefError, ManifestError
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release_layout import VERSIONS_DIR, parse_version_filename


@dataclass(frozen=True)
class ResolvedRelease:
    images: pulumi.Output[dict[str, str]]  # service -> pinned reference, for the configured services
    source: str  # "stack" | "ssm" | "file"
    version: int | None  # SSM parameter version or file store version; None when following a stack


def check_images(images: Any, services: Collection[str], *, where: str) -> dict[str, str]:
    """The configured services' references from a source, each validated as pinned."""
    if not isinstance(images, Mapping):
        raise ManifestError(f"{where} has no images map (got {type(images).__name__})",
                            hint="has the registry stack been deployed? `dockyard build` publishes it")
    missing = sorted(set(services) - set(images))
    if missing:
        raise ManifestError(f"{where} has no image for {', '.join(missing)}; it has "
                            f"{', '.join(sorted(images)) or 'none'}")
    checked = {}
    for service in sorted(services):
        try:
            checked[service] = str(ImageRef.parse_pinned(images[service], what=f"{where}: {service}"))
        except ImageRefError as err:
            raise ManifestError(err.message, hint=err.hint) from None
    return checked


def _promote_hint(settings: AppSettings) -> str:
    return f"run `dockyard promote {settings.stack} --from <registry|environment>` to write its first release"


def _fail(err: DockyardError) -> pulumi.RunError:
    return pulumi.RunError(str(err))


def from_stack(settings: AppSettings) -> ResolvedRelease:
    # The program always loads settings with the engine's organization, so a default is filled in.
    assert settings.registry_stack is not None
    registry = pulumi.StackReference("registry", stack_name=settings.registry_stack)
    where = f"stack {settings.registry_stack} output 'images'"

    def validate(images: Any) -> dict[str, str]:
        try:
            return check_images(images, settings.services, where=where)
        except DockyardError as err:
            raise _fail(err) from None

    return ResolvedRelease(images=registry.get_output("images").apply(validate), source="stack", version=None)


def from_ssm(settings: AppSettings) -> ResolvedRelease:
    name = settings.release_parameter
    # A failed invoke fails the whole program with the provider's own error, so look
    # first: listing the parent path is not an error when the parameter is missing.
    parent = name.rsplit("/", 1)[0] or "/"
    listing = aws.ssm.get_parameters_by_path(path=parent, recursive=False, with_decryption=False)
    if name not in (listing.names or []):
        raise _fail(DockyardError(f"SSM parameter {name} does not exist: stack {settings.stack} has no release yet",
                                  hint=_promote_hint(settings)))
    parameter = aws.ssm.get_parameter(name=name, with_decryption=False)
    try:
        release = Release.from_json(parameter.value, where=f"SSM parameter {name}")
        images = check_images(release.image_strings(), settings.services, where=f"SSM parameter {name}")
    except DockyardError as err:
        raise _fail(err) from None
    return ResolvedRelease(images=pulumi.Output.from_input(images), source="ssm", version=int(parameter.version))


def newest_file_release(release_dir: Path) -> tuple[int, Path] | None:
    versions = release_dir / VERSIONS_DIR
    if not versions.is_dir():
        return None
    numbered = [(n, p) for p in versions.iterdir() if (n := parse_version_filename(p.name)) is not None]
    return max(numbered) if numbered else None


def from_file(settings: AppSettings, project_dir: Path) -> ResolvedRelease:
    release_dir = (project_dir / settings.release_dir).resolve()
    newest = newest_file_release(release_dir)
    if newest is None:
        raise _fail(DockyardError(f"release store {settings.release_dir} has no release for stack {settings.stack}",
                                  hint=_promote_hint(settings)))
    version, path = newest
    where = f"{settings.release_dir}/{VERSIONS_DIR}/{path.name}"
    try:
        release = Release.from_json(path.read_text(), where=where)
        images = check_images(release.image_strings(), settings.services, where=where)
    except DockyardError as err:
        raise _fail(err) from None
    return ResolvedRelease(images=pulumi.Output.from_input(images), source="file", version=version)


def resolve(settings: AppSettings, project_dir: Path) -> ResolvedRelease:
    if settings.image_source == "stack":
        return from_stack(settings)
    if settings.image_source == "ssm":
        return from_ssm(settings)
    return from_file(settings, project_dir)
