"""A service's image: built and pushed with pulumi-docker, or recorded as built elsewhere.

Either way the component's `ref` is the pinned `<repository>@sha256:…` that
app stacks deploy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.config import BuildSettings
from infra.images import ImageRef, is_digest, pin

# Files that change on every run without changing the image.
_IGNORED_PARTS = {"__pycache__", ".git", ".pytest_cache", ".venv", "node_modules"}


@dataclass(frozen=True)
class ImageBuild:
    """What the registry stack needs to build one service: resolved paths and arguments."""

    settings: BuildSettings
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]

    def content_tag(self) -> str:
        """A tag derived from everything that goes into the build.

        Repositories have immutable tags, so a tag must name one content: the
        same inputs give the same tag (nothing to push), new inputs a new one.
        """
        digest = hashlib.sha256()
        for key, value in sorted(self.build_args.items()):
            digest.update(f"arg {key}={value}\n".encode())
        digest.update(f"platform {self.settings.platform}\n".encode())
        digest.update(b"dockerfile\n" + self.dockerfile.read_bytes())
        for path in sorted(self.context.rglob("*")):
            if path.is_file() and not _IGNORED_PARTS.intersection(path.relative_to(self.context).parts):
                digest.update(f"file {path.relative_to(self.context).as_posix()}\n".encode())
                digest.update(path.read_bytes())
        return "build-" + digest.hexdigest()[:16]


@dataclass(frozen=True)
class ServiceImageArgs:
    service: str
    build: ImageBuild | None = None
    prebuilt: str | None = None  # a pinned reference, or a bare digest in the managed repository
    repository_url: pulumi.Input[str] | None = None
    registry_id: pulumi.Input[str] | None = None
    cache_from: pulumi.Input[str | None] | None = None  # the image this service ran last


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

    def _built(self, name: str, args: ServiceImageArgs, build: ImageBuild) -> pulumi.Output[str]:
        repository_url = pulumi.Output.from_input(args.repository_url)
        credentials = aws.ecr.get_authorization_token_output(
            registry_id=args.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        cache_images = pulumi.Output.from_input(args.cache_from).apply(lambda ref: [ref] if ref else [])
        image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(repository_url, ":", build.content_tag()),
            build=docker.DockerBuildArgs(
                context=str(build.context),
                dockerfile=str(build.dockerfile),
                platform=build.settings.platform,
                args=dict(build.build_args),
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
                cache_from=docker.CacheFromArgs(images=cache_images),
            ),
            registry=docker.RegistryArgs(
                server=repository_url.apply(lambda url: url.split("/", 1)[0]),
                username=credentials.user_name,
                password=credentials.password,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # repo_digest is `<repository>@sha256:…`; parsing it proves the push produced a pinned reference.
        return image.repo_digest.apply(lambda digest: str(ImageRef.parse_pinned(digest, what=f"{args.service} build")))
