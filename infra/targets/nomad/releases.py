"""Which release a Nomad job version runs, and what a failed `up` through the provider left behind.

A job version is matched to a release by its images (the job carries no release number: see
job.py); jobs written by earlier dockyard versions still name theirs in their meta.

Through the provider (`nomad.address` without `renderDir`), the Job resource waits for the
deployment and fails `up` when it fails, before dockyard could follow it: Nomad is asked what
happened to the job version of this release. A deployment Nomad reverted is recorded as a release
(cause `reverted`) and the environment held, as in render mode; one that failed without a revert
is evidence about the app (VerificationFailed), so promote rolls back by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.errors import DockyardError
from dockyard.release.stores.base import ReleaseStore, StoredRelease
from dockyard.targets.checks import VerificationFailed
from dockyard.targets.nomad import job as nomad_job


def release_for(job: Mapping[str, Any] | None, releases: list[StoredRelease], *, before: int | None = None) -> int | None:
    """The newest release (older than `before`) whose images are the job version's; else its old meta."""
    if not job:
        return None
    images = nomad_job.images_of(job)
    for stored in releases:  # newest first
        if before is not None and stored.version >= before:
            continue
        if images and {s: r for s, r in stored.release.image_strings().items() if s in images} == images:
            return stored.version
    return nomad_job.release_number(job.get("Meta"))


def store_history(env: Any) -> Callable[[], list[StoredRelease]]:
    """The environment's releases, read only when asked (status reads them only for a running job)."""

    def read() -> list[StoredRelease]:
        from dockyard.release.context import AwsClients
        from dockyard.release.project import Project

        try:
            return Project(env.config_file.parent).store(env, AwsClients().ssm).history(limit=100)
        except DockyardError:
            return []

    return read


def after_failed_up(ctx: Any, env: Any, store: ReleaseStore | None, version: int | None) -> None:
    """The provider's `up` failed: record Nomad's revert and hold (NomadReverted), or report the failed
    deployment as evidence (VerificationFailed); return when Nomad shows no failed deployment of it."""
    from dockyard.targets.nomad import deploy

    settings = env.settings
    if settings.nomad.render_dir or store is None or version is None:
        return
    api = deploy.api_for(settings)
    if api is None:
        return
    job_id = nomad_job.job_id(settings.stack)
    current = store.get(version)
    if current is None:
        return
    try:
        wanted = current.release.image_strings()
        ours = [v for v in api.versions(job_id)
                if {s: r for s, r in wanted.items() if s in nomad_job.images_of(v)} == nomad_job.images_of(v)]
        if not ours:
            return
        job_version = max(int(v["Version"]) for v in ours)
        failed = next((d for d in api.deployments(job_id)
                       if d.get("JobVersion") == job_version and d.get("Status") == "failed"), None)
    except DockyardError:
        return  # could not look: the engine's own error stands
    if failed is None:
        return
    reason = failed.get("StatusDescription") or "failed"
    reverted = deploy._REVERTED_TO.search(reason)
    if reverted:
        deploy._record_revert(ctx, env, store, api, job_id, version, job_version, int(reverted.group(1)), reason)
    raise VerificationFailed(f"Nomad deployment of job {job_id} version {job_version} failed: {reason}",
                             hint=f"nomad job status {job_id}")
