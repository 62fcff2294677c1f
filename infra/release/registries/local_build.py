"""`dockyard build --local`: build and push each service with the local engine, record the digests.

This is how most CI pipelines build: BuildKit (buildx) where present, the
classic `docker build` where not, Packer for services whose `builder` is
`packer`. Each service's image is tagged `build-<hash of its inputs>` (see
infra/build_inputs.py). Before building, the registry is asked for that tag:
if it is there, the service is unchanged and keeps its digest with no build
and no push. What was pushed is recorded in the registry stack's
`dockyard:prebuilt`, and the registry stack publishes it as its release.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.build_inputs import BuildInputs, resolve_build
from dockyard.config import RegistrySettings
from dockyard.errors import BadInput, DockyardError
from dockyard.images import ImageRef, ecr_repository_arn
from dockyard.release.context import Context, read_source
from dockyard.release.registries.oci import api_repository
from dockyard.release.progress import run_logged
from dockyard.release.project import REGISTRY
from dockyard.release.trust.signing import SIGNING_KEY_ENV, Signer, predicate, signing_mode, source_repository

# The base image the Dockerfiles build on (their PYTHON_IMAGE argument), when the public one is out of reach.
BASE_IMAGE_ENV = "DOCKYARD_PYTHON_IMAGE"
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass
class ServiceBuild:
    service: str
    ref: str  # <repository>:<tag>@<digest>
    tag: str
    builder: str
    built: bool
    pushed: bool
    seconds: float = 0.0
    signed: bool = False  # a signature and build attestation are in the registry beside it

    def line(self) -> str:
        if not self.built:
            return f"  {self.service}: unchanged ({self.tag} is in the registry): no build, no push"
        return f"  {self.service}: built with {self.builder} and pushed in {self.seconds:.0f} s"


@dataclass
class LocalBuildResult:
    builds: list[ServiceBuild]
    recorded: bool
    published: dict[str, str] = field(default_factory=dict)
    against: str | None = None
    changed: list[str] = field(default_factory=list)
    log_dir: str = ""

    @property
    def images(self) -> dict[str, str]:
        return {b.service: b.ref for b in self.builds}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "images": self.images,
            "built": [b.service for b in self.builds if b.built],
            "pushed": [b.service for b in self.builds if b.pushed],
            "unchanged": [b.service for b in self.builds if not b.built],
            "signed": [b.service for b in self.builds if b.signed],
            "recorded": self.recorded, "logs": self.log_dir,
        }
        if self.against:
            data.update(against=self.against, changed=self.changed)
        return data

    def lines(self) -> list[str]:
        built = sum(b.built for b in self.builds)
        lines = [f"{built} of {len(self.builds)} image(s) built and pushed; "
                 f"{len(self.builds) - built} unchanged:"]
        lines += [f"  {b.service}: {b.ref}" for b in self.builds]
        if self.against:
            lines.append(f"Changed from {self.against}: {', '.join(self.changed) or 'none'}")
        if self.recorded:
            lines.append("Recorded as dockyard:prebuilt; the registry stack published them. "
                         "Next: dockyard promote <env> --from registry")
        return lines


def build_local(ctx: Context, *, services: list[str], push_only: bool, against: str | None) -> LocalBuildResult:
    env = ctx.project.environment(REGISTRY)
    settings = env.settings
    if not isinstance(settings, RegistrySettings):
        raise BadInput(f"Pulumi.{REGISTRY}.yaml does not have dockyard:role registry")
    if settings.registry == "external":
        raise BadInput("dockyard:registry is 'external': this project records images another system pushed, "
                       "so there is nothing to build here",
                       hint="set dockyard:registry to 'oci' (with dockyard:oci) or 'ecr' to build and push")
    unknown = sorted(set(services) - set(settings.services))
    if unknown:
        raise BadInput(f"--service {unknown[0]}: the registry stack has no such service",
                       hint=f"it has {', '.join(settings.services)}")
    chosen = services or list(settings.services)
    repositories = _repositories(ctx, settings)
    engine = Engine.find()
    log_dir = ctx.project.dir / ".dockyard" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    plans = {s: _with_base_image(resolve_build(ctx.project.dir, s, settings.builds[s])) for s in chosen}
    builds = []
    for service, inputs in plans.items():
        builds.append(_build_one(ctx, engine, inputs, repositories[service], log_dir / f"build-{service}.log"))
    _sign(ctx, plans, builds)
    result = LocalBuildResult(builds=builds, recorded=False, log_dir=str(log_dir))
    if against:
        current = read_source(ctx, against).release.image_strings()
        result.against = against
        result.changed = sorted(b.service for b in builds
                                if ImageRef.parse(current.get(b.service, "x@sha256:" + "0" * 64)).digest
                                != ImageRef.parse(b.ref).digest)
    if not push_only:
        ctx.log(f"Recording {len(builds)} image(s) as dockyard:prebuilt in {env.config_file.name}...")
        ctx.deployer.set_config(REGISTRY, {f"prebuilt.{b.service}": b.ref for b in builds})
        up = ctx.deployer.up(REGISTRY)
        result.published = dict(up.outputs.get("images") or {})
        result.recorded = True
    return result


def _sign(ctx: Context, plans: Mapping[str, BuildInputs], builds: list[ServiceBuild]) -> None:
    """Sign and attest every image by digest; an unchanged one only when its signature is missing."""
    mode = signing_mode()
    if mode is None:
        ctx.log(f"warning: images not signed (no {SIGNING_KEY_ENV}, no GitHub OIDC token): environments whose "
                "dockyard:trust verifies signatures will refuse them")
        return
    signer = Signer(ctx.registries, mode, log=ctx.log)
    repository = source_repository(ctx.project.dir)
    for build in builds:
        done = signer.sign(build.service, build.ref, predicate(
            service=build.service, repository=repository, commit=plans[build.service].commit, inputs=build.tag,
            builder=build.builder, built_at=ctx.timestamp()))
        build.signed = True
        ctx.log(done.line())


def _with_base_image(inputs: BuildInputs) -> BuildInputs:
    """The local base image, when set, is a build argument: it goes into the tag like any other input."""
    base = os.environ.get(BASE_IMAGE_ENV)
    if not base or "PYTHON_IMAGE" in inputs.build_args:
        return inputs
    return dataclasses.replace(inputs, build_args={**inputs.build_args, "PYTHON_IMAGE": base})


def _repositories(ctx: Context, settings: RegistrySettings) -> dict[str, str]:
    if settings.oci is not None:
        return {s: settings.oci.repository(s) for s in settings.services}
    outputs = ctx.deployer.outputs(REGISTRY)
    repositories = outputs.get("repositories") or {}
    missing = [s for s in settings.services if s not in repositories]
    if missing:
        raise BadInput(f"the registry stack has no ECR repository for {', '.join(missing)} yet",
                       hint="create them once with `pulumi up -s registry` (or `dockyard build`)")
    return dict(repositories)


def _build_one(ctx: Context, engine: Engine, inputs: BuildInputs, repository: str, log: Path) -> ServiceBuild:
    tag = inputs.tag(ctx.project.dir)
    existing = find_tag(ctx, repository, tag)
    if existing:
        build = ServiceBuild(inputs.service, f"{repository}:{tag}@{existing}", tag, inputs.builder, False, False)
        ctx.log(build.line())
        return build
    image = f"{repository}:{tag}"
    started = time.monotonic()
    what = "Packer" if inputs.builder == "packer" else engine.builder
    run_logged(ctx.log, f"  {inputs.service}: building with {what} (commit {inputs.commit[:12]})", log,
               engine.packer_command(inputs, image) if inputs.builder == "packer"
               else engine.build_command(inputs, image),
               cwd=ctx.project.dir, env=engine.env(inputs))
    output = run_logged(ctx.log, f"  {inputs.service}: pushing {image}", log, [engine.docker, "push", image],
                        cwd=ctx.project.dir, env=engine.env(inputs))
    pushed = _PUSHED_DIGEST.findall(output)
    if not pushed:
        raise DockyardError(f"{inputs.service}: docker push printed no digest", hint=f"see {log}")
    # Trust the registry, not the client: the digest must be what the registry now serves for the tag.
    served = find_tag(ctx, repository, tag)
    if served != pushed[-1]:
        raise DockyardError(f"{inputs.service}: pushed {pushed[-1]} but {repository}:{tag} serves {served}")
    build = ServiceBuild(inputs.service, f"{image}@{served}", tag, what, True, True, time.monotonic() - started)
    ctx.log(build.line())
    return build


def find_tag(ctx: Context, repository: str, tag: str) -> str | None:
    """The digest `repository:tag` names in its registry, or None."""
    ref = ImageRef.parse(f"{repository}:{tag}")
    arn = ecr_repository_arn(ref)
    if arn is None:
        return ctx.registries.for_ref(ref).manifest_digest(api_repository(ref), tag)
    from botocore.exceptions import ClientError

    _, _, _, region, account, _ = arn.split(":", 5)
    try:
        found = ctx.aws.client("ecr", region).describe_images(
            registryId=account, repositoryName=ref.repository, imageIds=[{"imageTag": tag}])
    except ClientError as err:
        if err.response["Error"]["Code"] == "ImageNotFoundException":
            return None
        raise
    details = found.get("imageDetails") or []
    return details[0]["imageDigest"] if details else None


@dataclass(frozen=True)
class Engine:
    """The local container engine: docker (DOCKER_HOST or its default socket), with buildx when installed."""

    docker: str
    buildx: bool
    packer: str | None

    @classmethod
    def find(cls, which: Callable[[str], str | None] = shutil.which) -> Engine:
        docker = which("docker")
        if docker is None:
            raise DockyardError("no docker command on PATH: building needs a container engine",
                                hint="./scripts/engine up starts one (or install Docker)")
        probe = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                               text=True, timeout=30)
        if probe.returncode != 0:
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise DockyardError(f"the container engine at {where} does not answer",
                                hint="./scripts/engine up starts one; or set DOCKER_HOST")
        buildx = subprocess.run([docker, "buildx", "version"], capture_output=True, timeout=30).returncode == 0
        return cls(docker=docker, buildx=buildx, packer=which("packer"))

    @property
    def builder(self) -> str:
        return "BuildKit (buildx)" if self.buildx else "docker build"

    def env(self, inputs: BuildInputs) -> Mapping[str, str]:
        env = dict(os.environ)
        if not self.buildx:
            env["DOCKER_BUILDKIT"] = "0"  # the classic builder: no frontend image to pull
        return env

    def build_command(self, inputs: BuildInputs, image: str) -> list[str]:
        command = [self.docker, "buildx", "build", "--load"] if self.buildx else [self.docker, "build"]
        command += ["--platform", inputs.platform, "--file", inputs.recipe, "--tag", image]
        for key, value in sorted(inputs.build_args.items()):
            command += ["--build-arg", f"{key}={value}"]
        return [*command, inputs.context]

    def packer_command(self, inputs: BuildInputs, image: str) -> list[str]:
        if self.packer is None:
            raise DockyardError(f"{inputs.service} is built with Packer, and there is no packer command on PATH",
                                hint="install Packer (Debian: apt-get install packer), or set "
                                     f"dockyard:services.{inputs.service}.builder to docker")
        repository, _, tag = image.rpartition(":")
        # The template's variables (images/worker/worker.pkr.hcl); it tags and pushes the image itself.
        variables = {"repository": repository, "tag": tag, "commit_sha": inputs.commit,
                     **({"python_image": inputs.build_args["PYTHON_IMAGE"]} if "PYTHON_IMAGE" in inputs.build_args
                        else {})}
        command = [self.packer, "build", "-color=false"]
        for key, value in variables.items():
            command += ["-var", f"{key}={value}"]
        return [*command, inputs.recipe]
