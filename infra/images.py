"""Image references: the one place that knows the reference grammar and digest pinning.

The grammar follows the distribution reference format that docker uses:
``[host[:port]/]path[/path...][:tag][@sha256:<64 hex>]``. A reference is
deployable only when it is pinned by a sha256 digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dockyard.errors import ImageRefError

DOCKER_HUB = "docker.io"

# Path components: lowercase alphanumerics separated by '.', '_', '__' or runs of '-'.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
# A registry host: DNS labels (letters of any case), an IPv4 address, or a bracketed IPv6 address.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")

# docker refuses repository names longer than this (host included).
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. ``registry`` is None for Docker Hub shorthand."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse any well-formed reference, pinned or not."""
        if not isinstance(text, str):
            raise ImageRefError(f"image reference must be a string, got {type(text).__name__}")
        original = text
        if not text or text != text.strip():
            raise ImageRefError(f"{original!r} is not an image reference: empty or surrounded by spaces")
        digest = None
        if "@" in text:
            text, digest = text.rsplit("@", 1)
            if not _ANY_DIGEST.match(digest):
                raise ImageRefError(f"{original!r} has a malformed digest {digest!r}; expected sha256:<64 lowercase hex>")
            if not _DIGEST.match(digest):
                raise ImageRefError(
                    f"{original!r} has digest {digest!r}; dockyard pins images by sha256:<64 lowercase hex> only"
                )
        name, tag = text, None
        # A ':' after the last '/' separates the tag; one before it belongs to a host port.
        last_colon, last_slash = text.rfind(":"), text.rfind("/")
        if last_colon > last_slash:
            name, tag = text[:last_colon], text[last_colon + 1 :]
            if not _TAG.match(tag):
                raise ImageRefError(f"{original!r} has an invalid tag {tag!r}; tags are [A-Za-z0-9_.-], at most 128")
        registry, path = _split_registry(name)
        if registry is not None and not _HOST.match(registry):
            raise ImageRefError(f"{original!r} has an invalid registry host {registry!r}")
        if not _PATH.match(path):
            raise ImageRefError(
                f"{original!r} has an invalid repository {path!r}; repository paths are lowercase "
                "letters, digits and single separators (. _ __ -), joined by '/'"
            )
        if len(name) > MAX_NAME_LENGTH:
            raise ImageRefError(f"{original[:60]!r}... is longer than {MAX_NAME_LENGTH} characters")
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    @classmethod
    def parse_pinned(cls, text: str, *, what: str | None = None) -> ImageRef:
        """Parse a reference that must carry a digest; `what` names it in the error."""
        ref = cls.parse(text)
        if not ref.pinned:
            subject = f"{what}: {text}" if what else text
            raise ImageRefError(
                f"{subject} has no digest; pin {ref.name}@sha256:<digest>",
                hint=f"`docker buildx imagetools inspect {text}` prints the digest",
            )
        return ref

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def name(self) -> str:
        """The repository name as written, host included when there is one."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def domain(self) -> str:
        """The registry the reference resolves to (Docker Hub when none is written)."""
        return self.registry or DOCKER_HUB

    def with_digest(self, digest: str) -> ImageRef:
        if not _DIGEST.match(digest):
            raise ImageRefError(f"{digest!r} is not a sha256 digest; expected sha256:<64 lowercase hex>")
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_registry(name: str) -> tuple[str | None, str]:
    """docker's rule: the first component is a host if it has '.', ':', uppercase, or is localhost."""
    first, sep, rest = name.partition("/")
    if sep and (first == "localhost" or any(c in first for c in ".:[") or first.lower() != first):
        return first, rest
    return None, name


def architecture(platform: str) -> str:
    """The CPU architecture of an OCI platform (`linux/arm64` -> `arm64`), as Kubernetes node
    labels and ECS runtime platforms name it."""
    os_name, _, arch = platform.partition("/")
    if os_name != "linux" or arch not in ("amd64", "arm64"):
        raise ValueError(f"platform {platform!r}: expected linux/amd64 or linux/arm64")
    return arch


def cpu_architecture(platform: str) -> str:
    """An OCI platform as an ECS task definition's `runtimePlatform.cpuArchitecture` (X86_64 or ARM64)."""
    return {"amd64": "X86_64", "arm64": "ARM64"}[architecture(platform)]


def is_digest(text: str) -> bool:
    return isinstance(text, str) and bool(_DIGEST.match(text))


def pin(repository_url: str, digest: str) -> str:
    """``<repository>@sha256:…`` from a repository URL (any tag dropped) and a digest."""
    ref = ImageRef.parse(repository_url)
    return str(replace(ref, tag=None).with_digest(digest))


_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def ecr_repository_arn(ref: ImageRef) -> str | None:
    """The ARN of the private ECR repository `ref` lives in, or None for any other registry."""
    match = _ECR_HOST.match(ref.registry or "")
    if not match:
        return None
    account, region = match.groups()
    partition = "aws-cn" if (ref.registry or "").endswith(".cn") else "aws"
    return f"arn:{partition}:ecr:{region}:{account}:repository/{ref.repository}"
