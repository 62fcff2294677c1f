"""What each image says about itself, read from its registry by digest before a release is written: the
user it runs as and the commit it was built from (its `org.opencontainers.image.revision` label).

The release records both (`imageConfig`), so the program knows the user at deploy time without reaching
the registry, and `status`/`history` show each service's commit from the image itself. An image that
would run as root, or names its user, is refused here (exit 2, with the key to set) before anything is
written, unless the service's own keys say which non-root user it runs as.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.config.runtime import run_as
from dockyard.images import ImageRef
from dockyard.manifest import ImageFacts, Release
from dockyard.release.context import Context
from dockyard.release.project import Environment
from dockyard.release.registries.oci import api_repository

REVISION_LABEL = "org.opencontainers.image.revision"


def read(ctx: Context, ref: ImageRef) -> ImageFacts:
    """The image's user and revision, from its config blob (for a multi-platform index: its first image)."""
    config = ctx.registries.for_ref(ref).image_config(api_repository(ref), ref.digest or "")
    body = config.get("config") or {}
    labels = body.get("Labels") or {}
    return ImageFacts(user=str(body.get("User") or ""), commit=labels.get(REVISION_LABEL) or None)


def carried(release: Release | None, images: Mapping[str, str]) -> dict[str, ImageFacts]:
    """What `release` already recorded for the very same images (no need to ask the registry again)."""
    if release is None:
        return {}
    refs = release.image_strings()
    return {s: f for s, f in release.image_config.items() if s in images and refs.get(s) == images[s]}


def inspect(ctx: Context, env: Environment, images: Mapping[str, str],
            known: Mapping[str, ImageFacts] | None = None) -> dict[str, ImageFacts]:
    """Each image's facts (from `known`, else its registry), refusing any the environment would run as root.

    Raises ConfigError (exit 2) naming `dockyard:services.<name>.runAsUser`; registry failures are the
    OCI client's (unreachable: exit 1; refused credentials: exit 2 with `docker login`).
    """
    facts = {}
    for service, text in sorted(images.items()):
        ref = ImageRef.parse_pinned(text)
        found = (known or {}).get(service) or read(ctx, ref)
        settings = env.settings.services.get(service)
        if settings is not None:
            run_as(service, settings.runtime, found.user, image=f"{service} {ref.digest}")
        facts[service] = found
    return facts


def merged(current: Release | None, new: Mapping[str, ImageFacts], images: Mapping[str, str]) -> dict[str, ImageFacts]:
    """The facts of a release running `images`: the new ones, and the current release's for images it keeps."""
    return {**carried(current, images), **{s: f for s, f in new.items() if s in images}}
