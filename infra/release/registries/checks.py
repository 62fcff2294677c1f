"""Where a release's images live: prove each digest is there, and tag promoted digests.

ECR repositories are read with boto3 (their account and region come from the
reference's host); every other registry through the OCI distribution API.
Both checks run before anything is written, so a release never names an
image that cannot be pulled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import BadInput, DockyardError
from dockyard.images import ImageRef, ecr_repository_arn
from dockyard.release.context import Context
from dockyard.release.registries.oci import MANIFEST_TYPES, api_host, api_repository

RELEASE_TAG = "release-{env}-v{version}"


@dataclass(frozen=True)
class StoredImage:
    """A digest proven to be in its registry."""

    service: str
    ref: ImageRef
    ecr: tuple[str, str] | None  # (account, region) for ECR; None for an OCI registry

    @property
    def digest(self) -> str:
        return self.ref.digest or ""

    @property
    def repository(self) -> str:
        return self.ref.repository if self.ecr else api_repository(self.ref)

    def ecr_get(self, ctx: Context) -> dict[str, Any]:
        account, region = self.ecr or ("", "")
        return ctx.aws.client("ecr", region).batch_get_image(
            registryId=account, repositoryName=self.ref.repository, imageIds=[{"imageDigest": self.digest}],
            acceptedMediaTypes=list(MANIFEST_TYPES))


def check_present(ctx: Context, images: Mapping[str, str], *, fix: str) -> list[StoredImage]:
    """Every image must be in its registry; the first that is not stops the command (exit 2).

    `fix` tells the user what to do about a missing digest (push it, or pick another release).
    """
    found = []
    for service, text in sorted(images.items()):
        ref = ImageRef.parse_pinned(text)
        arn = ecr_repository_arn(ref)
        if arn is not None:
            _, _, _, region, account, _ = arn.split(":", 5)
            image = StoredImage(service, ref, (account, region))
            reason = _ecr_missing(ctx, image)
        else:
            image = StoredImage(service, ref, None)
            client = ctx.registries.for_ref(ref)
            present = client.manifest_digest(image.repository, image.digest)
            reason = None if present == image.digest else f"not in {client.host}/{image.repository}"
        if reason:
            raise BadInput(f"{service}: {text} is missing ({reason})", hint=fix)
        found.append(image)
    return found


def _ecr_missing(ctx: Context, image: StoredImage) -> str | None:
    from botocore.exceptions import ClientError

    account, region = image.ecr or ("", "")
    try:
        response = image.ecr_get(ctx)
    except ClientError as err:
        if err.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        return f"no ECR repository {image.ref.repository} in {account}/{region}"
    if response.get("images"):
        return None
    failure = (response.get("failures") or [{}])[0].get("failureReason", "not found")
    return f"not in ECR repository {image.ref.repository}: {failure}"


def tag_release(ctx: Context, images: list[StoredImage], tag: str) -> list[str]:
    """Tag each digest so retention (which spares release-*) never removes what an environment ran.

    A tag that cannot be written is a warning, not a failure: the release is already recorded.
    """
    tagged = []
    for image in images:
        try:
            if image.ecr:
                _ecr_tag(ctx, image, tag)
            else:
                ctx.registries.for_ref(image.ref).tag(image.repository, image.digest, tag)
        except DockyardError as err:
            ctx.log(f"warning: could not tag {image.service} {image.digest} as {tag}: {err}")
            continue
        tagged.append(f"{image.ref.name}:{tag}")
    return tagged


def _ecr_tag(ctx: Context, image: StoredImage, tag: str) -> None:
    from botocore.exceptions import ClientError

    account, region = image.ecr or ("", "")
    manifest = image.ecr_get(ctx)["images"][0]
    try:
        ctx.aws.client("ecr", region).put_image(
            registryId=account, repositoryName=image.ref.repository, imageTag=tag,
            imageManifest=manifest["imageManifest"], imageDigest=image.digest,
            **({"imageManifestMediaType": manifest["imageManifestMediaType"]}
               if manifest.get("imageManifestMediaType") else {}))
    except ClientError as err:
        if err.response["Error"]["Code"] != "ImageAlreadyExistsException":
            raise DockyardError(err.response["Error"]["Message"]) from None
