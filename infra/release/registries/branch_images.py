"""Branch-only images: the digests a branch stack ran that no other stack ever released, and their removal.

A pull request's CI pushes the images it changed; once its branch stack is gone
nothing else points at them. Anything another environment ran, now or in its
kept history, stays: a rollback may need it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from dockyard import naming
from dockyard.errors import BadInput, DockyardError
from dockyard.images import ImageRef, ecr_repository_arn
from dockyard.release.context import Context
from dockyard.release.project import Environment
from dockyard.release.stores.base import ReleaseStore

NOT_SUPPORTED = "skipped (registry not supported)"
ECR_BATCH = 100  # batch_delete_image takes at most 100 image ids


@dataclass(frozen=True)
class ImageRemoval:
    removed: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (reference, why it is still there)

    def __add__(self, other: ImageRemoval) -> ImageRemoval:
        return ImageRemoval(self.removed + other.removed, self.skipped + other.skipped)

    def to_json(self) -> dict[str, Any]:
        return {"removedImages": list(self.removed),
                "skippedImages": [{"image": image, "reason": reason} for image, reason in self.skipped]}

    def lines(self) -> list[str]:
        lines = [f"Removed {len(self.removed)} branch-only image(s)" + (":" if self.removed else ".")]
        lines += [f"  {image}" for image in self.removed]
        lines += [f"  kept {image}: {reason}" for image, reason in self.skipped]
        return lines


def branch_only(branch_refs: Iterable[str], other_refs: Iterable[str]) -> list[ImageRef]:
    """The branch's images whose digest no other release names, one per repository and digest, untagged.

    Digests are compared across repositories: the same content released anywhere
    else is kept, since one registry may serve another through a mirror.
    """
    in_use = {ImageRef.parse(text).digest for text in other_refs}
    chosen: dict[str, ImageRef] = {}
    for text in branch_refs:
        image = replace(ImageRef.parse(text), tag=None)
        if image.digest and image.digest not in in_use:
            chosen.setdefault(str(image), image)
    return [chosen[key] for key in sorted(chosen)]


def _released(store: ReleaseStore) -> list[str]:
    return [ref for stored in store.history() for ref in stored.release.image_strings().values()]


def images_elsewhere(ctx: Context, branch_stack: str) -> tuple[list[str], list[str]]:
    """Every image any other stack of the project released (its whole kept history) or runs now,
    and the stacks that could not be read: while there are any, nobody can say an image is unused."""
    refs: list[str] = []
    unreadable: list[str] = []
    for name in ctx.project.stack_names():
        if name == branch_stack:
            continue
        try:
            env = ctx.project.environment(name)
            if env.store_kind != "stack":
                refs += _released(ctx.store(env))
                continue
            try:
                outputs = ctx.deployer.outputs(name)
            except BadInput:  # never deployed to this backend: it runs nothing
                continue
            refs += [str(v) for v in (outputs.get("images") or {}).values()]
        except DockyardError as err:
            unreadable.append(f"cannot read what {name} runs: {err.message}")
    return refs, unreadable


def remove_branch_images(ctx: Context, env: Environment) -> ImageRemoval:
    """Remove the images only this branch stack's release history names. Call before its store is deleted."""
    if not naming.is_branch_stack(env.name):
        raise BadInput(f"{env.name} is not a branch stack; only a branch's own images are ever removed")
    mine = _released(ctx.store(env))
    if not mine:
        return ImageRemoval()
    others, unreadable = images_elsewhere(ctx, env.name)
    candidates = branch_only(mine, others)
    if unreadable:
        ctx.log(f"{env.name}: its images stay in the registry; {'; '.join(unreadable)}")
        return ImageRemoval(skipped=tuple((str(image), unreadable[0]) for image in candidates))
    return remove_images(ctx, candidates)


def remove_images(ctx: Context, images: list[ImageRef]) -> ImageRemoval:
    """Delete each image from its registry: ECR through its API, any other registry through `oci`."""
    ecr: dict[tuple[str, str, str], list[ImageRef]] = defaultdict(list)
    result = ImageRemoval()
    for image in images:
        arn = ecr_repository_arn(image)
        if arn is None:
            result += _remove_oci(ctx, image)
            continue
        _, _, _, region, account, _ = arn.split(":", 5)
        ecr[(account, region, image.repository)].append(image)
    for (account, region, repository), group in sorted(ecr.items()):
        for start in range(0, len(group), ECR_BATCH):
            result += _remove_ecr(ctx, account, region, repository, group[start:start + ECR_BATCH])
    return result


def _remove_ecr(ctx: Context, account: str, region: str, repository: str, images: list[ImageRef]) -> ImageRemoval:
    from botocore.exceptions import BotoCoreError, ClientError

    by_digest = {image.digest: str(image) for image in images}
    try:
        response = ctx.aws.client("ecr", region).batch_delete_image(
            registryId=account, repositoryName=repository,
            imageIds=[{"imageDigest": digest} for digest in by_digest])
    except (ClientError, BotoCoreError) as err:
        reason = f"ECR refused: {err}"
        ctx.log(f"{repository}: {reason}")
        return ImageRemoval(skipped=tuple((ref, reason) for ref in by_digest.values()))
    failed = {f.get("imageId", {}).get("imageDigest"): f for f in response.get("failures") or []}
    removed, skipped = [], []
    for digest, ref in by_digest.items():
        failure = failed.get(digest)
        if failure is None:
            removed.append(ref)
            ctx.log(f"Removed {ref}")
        elif failure.get("failureCode") == "ImageNotFound":
            skipped.append((ref, "already gone"))
        else:
            skipped.append((ref, f"ECR: {failure.get('failureCode')}: {failure.get('failureReason', '')}".strip()))
    return ImageRemoval(removed=tuple(removed), skipped=tuple(skipped))


def _remove_oci(ctx: Context, image: ImageRef) -> ImageRemoval:
    ref = str(image)
    try:
        from dockyard.release.registries.oci import delete_oci_image  # other registries: the OCI distribution API
    except ImportError:
        return ImageRemoval(skipped=((ref, NOT_SUPPORTED),))
    try:
        deleted = delete_oci_image(ref)
    except Exception as err:  # noqa: BLE001 - the stack is gone already; report the image, carry on
        ctx.log(f"{ref}: not removed: {err}")
        return ImageRemoval(skipped=((ref, f"not removed: {err}"),))
    if deleted is False:
        return ImageRemoval(skipped=((ref, "already gone"),))
    ctx.log(f"Removed {ref}")
    return ImageRemoval(removed=(ref,))
