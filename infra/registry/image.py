"""A service's image: built and pushed with pulumi-docker, or recorded as built elsewhere.

Either way the component's `ref` is the pinned `<repository>@sha256:…` that
app stacks deploy.

A build's inputs are exactly `BuildInputs`: paths relative to the project,
the service's own commit, its platform and build arguments. Nothing from an
earlier run (no cache reference) and no short-lived credential goes in, so a
run with nothing changed has no diff, builds nothing and pushes nothing. The
push authenticates through the Docker credential sources (`docker login`,
a credential helper, or CI's registry login step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from dockyard.build_inputs import BuildInputs
from dockyard.images import ImageRef, is_digest, pin


@dataclass(frozen=True)
class ServiceImageArgs:
    service: str
    project_dir: Path
    build: BuildInputs | None = None
    prebuilt: str | None = None  # a pinned reference, or a bare digest in the managed repository
    repository_url: pulumi.Input[str] | None = None


class ServiceImage(pulumi.ComponentResource):
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:registry:ServiceImage", name, None, opts)
        if args.prebuilt is not None:
            self.ref = self._recorded(args)
        elif args.build is not None and args.repository_url is not None:
            self.ref = self._built(name, args, args.build)
        else:
            raise ValueError(f"{args.service}: an image is either prebuilt or built into a repository")
        self.register_outputs({"ref": self.ref})

    @staticmethod
    def _recorded(args: ServiceImageArgs) -> pulumi.Output[str]:
        prebuilt = args.prebuilt or ""
        if is_digest(prebuilt):
            # CI pushed to the repository this stack manages and handed over the digest.
            return pulumi.Output.from_input(args.repository_url).apply(lambda url: pin(url, prebuilt))
        return pulumi.Output.from_input(str(ImageRef.parse_pinned(prebuilt)))

    def _built(self, name: str, args: ServiceImageArgs, build: BuildInputs) -> pulumi.Output[str]:
        repository_url = pulumi.Output.from_input(args.repository_url)
        image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(repository_url, ":", build.tag(args.project_dir)),
            build=docker.DockerBuildArgs(
                context=build.context,
                dockerfile=build.recipe,
                platform=build.platform,
                args=dict(build.build_args),
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # repo_digest is `<repository>@sha256:…`; parsing it proves the push produced a pinned reference.
        return image.repo_digest.apply(lambda digest: str(ImageRef.parse_pinned(digest, what=f"{args.service} build")))
