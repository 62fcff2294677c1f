"""The user each container runs as, decided by the program: the service's own keys, else the image's user
that the release recorded when it was written (`imageConfig`), else, for targets that cannot enforce
non-root themselves (ECS, Nomad), the image's config read from its registry by digest at deploy time.

Kubernetes needs no look-up: without a recorded user its pods keep `runAsNonRoot`, and the kubelet
refuses to start an image whose user is root or a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pulumi

from dockyard.config import AppSettings, ServiceSettings
from dockyard.config.runtime import run_as
from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import ImageFacts


def read_user(image: str) -> str | None:
    """The image's `User` from its config (None: no such manifest, so the pull itself will fail)."""
    # The program reaches the registry as docker would (Docker's credentials); lazy: only stacks
    # whose releases do not record the user get here.
    from dockyard.release.registries.oci import RegistryClients, api_repository

    ref = ImageRef.parse_pinned(image)
    client = RegistryClients().for_ref(ref)
    repository = api_repository(ref)
    if client.manifest_digest(repository, ref.digest or "") is None:
        return None
    return str((client.image_config(repository, ref.digest or "").get("config") or {}).get("User") or "")


# Replaced in tests whose images live in no registry.
READER: Callable[[str], str | None] = read_user


def _with_user(service: ServiceSettings, user: str | None, image: str) -> ServiceSettings:
    try:
        found = run_as(service.name, service.runtime, user, image=f"{service.name} {image.rsplit('@', 1)[-1]}")
    except DockyardError as err:
        raise pulumi.RunError(str(err)) from None
    if found is None:
        return service
    return replace(service, runtime=replace(service.runtime, run_as_user=found.user, run_as_group=found.group))


def recorded(settings: AppSettings, facts: Mapping[str, ImageFacts], images: Mapping[str, str]) -> AppSettings:
    """Each service's user from the release's record (plain values: a release read from SSM or files)."""
    services = {name: _with_user(s, facts[name].user, images.get(name, "")) if name in facts else s
                for name, s in settings.services.items()}
    return replace(settings, services=services)


def looked_up(service: ServiceSettings, image: str) -> ServiceSettings:
    """Inside an Output's apply: a service whose user is still unknown gets its image's, read by digest."""
    if service.runtime.run_as_user is not None:
        return service
    try:
        user = READER(image)
    except DockyardError as err:
        raise pulumi.RunError(f"dockyard:services.{service.name}.runAsUser: cannot read the user of {image} from "
                              f"its registry ({err.message}); set runAsUser, or deploy releases written by "
                              "`dockyard promote`, which records it") from None
    return _with_user(service, user, image) if user is not None else service


def with_images(settings: AppSettings, images: Mapping[str, str]) -> AppSettings:
    """`looked_up` for every service of `settings` that `images` names."""
    return replace(settings, services={n: looked_up(s, images[n]) if n in images else s
                                       for n, s in settings.services.items()})
