"""An app stack on Nomad: one job through Pulumi's Nomad provider, or its JSON written for GitOps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from dockyard.targets.nomad import job as nomad_job
from dockyard.app.image_source import ResolvedRelease
from dockyard.config import AppSettings


@dataclass(frozen=True)
class NomadAppArgs:
    settings: AppSettings
    spec: pulumi.Output[dict[str, Any]]  # nomad_job.job(...) of the release's images
    render_file: Path | None  # render mode: where the job's JSON goes; None: the provider submits it


def write_job(path: Path, spec: dict[str, Any]) -> str:
    """Write the job as `nomad job run -json` and `POST /v1/jobs` read it; return the file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(text)
    temporary.replace(path)  # never a half-written job for a GitOps controller to pick up
    return str(path)


class NomadApp(pulumi.ComponentResource):
    """The environment's Nomad job: its services as task groups of one job."""

    job_id: str
    file: pulumi.Output[str] | None

    def __init__(self, name: str, args: NomadAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:NomadApp", name, None, opts)
        nomad = args.settings.nomad
        self.job_id = nomad_job.job_id(args.settings.stack)
        self.file = None
        if args.render_file is not None:
            path = args.render_file
            # Written on `up` only: a preview leaves the rendered jobs as they are.
            self.file = args.spec.apply(
                lambda spec: str(path) if pulumi.runtime.is_dry_run() else write_job(path, spec))
        else:
            import pulumi_nomad

            provider = pulumi_nomad.Provider(
                f"{name}-provider", address=nomad.address, region=nomad.region,
                secret_id=pulumi.Output.secret(nomad.token) if nomad.token else None,
                opts=pulumi.ResourceOptions(parent=self))
            pulumi_nomad.Job(
                f"{name}-job",
                jobspec=args.spec.apply(lambda spec: json.dumps(spec, sort_keys=True)),
                json=True,
                # Wait for the deployment to finish (healthy, or failed and reverted) instead of
                # returning once the job is registered.
                detach=False,
                purge_on_destroy=True,
                # A job that finished or was stopped outside Pulumi is run again on the next `up`.
                rerun_if_dead=True,
                opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.register_outputs({"jobId": self.job_id, "file": self.file})


def deploy(settings: AppSettings, release: ResolvedRelease, project_dir: Path) -> None:
    nomad = settings.nomad
    label = f"{release.source}:{release.version if release.version is not None else 'latest'}"
    spec = release.images.apply(lambda images: nomad_job.job(settings, images, label))
    job_id = nomad_job.job_id(settings.stack)
    render_dir = (project_dir / nomad.render_dir).resolve() if nomad.render_dir else None
    app = NomadApp("nomad", NomadAppArgs(settings=settings, spec=spec,
                                         render_file=render_dir / f"{job_id}.json" if render_dir else None))
    services = {name: nomad_job.service_name(name, settings.stack)
                for name, service in sorted(settings.services.items()) if service.routed}
    pulumi.export("url", None)  # ports are chosen per allocation: the command finds them from the allocations
    pulumi.export("services", services)
    pulumi.export("nomadJob", {"id": job_id, "namespace": nomad.namespace, "region": nomad.region,
                               "address": nomad.address, "file": app.file})
    pulumi.export("renderDir", str(render_dir) if render_dir else None)
