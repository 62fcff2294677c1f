"""What goes into one service's image build, and the tag that names that content.

Used by the registry program (pulumi-docker builds) and by the `dockyard`
command (builds with the local engine or Packer), so both name the same
content with the same `build-<hash>` tag. Reads files and asks git; registers
no resources and talks to no registry.

Two rules keep rebuilds away:

* the inputs hold nothing that changes between runs of the same source: paths
  are relative to the project directory, nothing is fed back from an earlier
  build (no cache references), no credentials;
* `COMMIT_SHA` is the last commit that changed *this service's* inputs, so a
  commit touching only `web` leaves `worker`'s inputs, tag and digest alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.config import BuildSettings
from dockyard.errors import ConfigError

# Build argument every image receives, so `/version` can tell which commit it was built from.
COMMIT_ARG = "COMMIT_SHA"
TAG_PREFIX = "build-"
# Files that change on every run without changing the image.
_IGNORED_PARTS = frozenset({"__pycache__", ".git", ".pytest_cache", ".venv", "node_modules", ".mypy_cache"})


@dataclass(frozen=True)
class BuildInputs:
    """One service's build, with paths relative to the project directory (posix form)."""

    service: str
    builder: str  # "docker" (a Dockerfile) or "packer" (a Packer template)
    context: str
    recipe: str  # the Dockerfile or the Packer template
    platform: str
    build_args: Mapping[str, str]

    @property
    def commit(self) -> str:
        return self.build_args.get(COMMIT_ARG, "unknown")

    def tag(self, project_dir: Path) -> str:
        """`build-<hash>` of everything that goes into the image.

        Repositories keep tags immutable, so a tag names one content: the same
        inputs give the same tag (nothing to build or push), new inputs a new one.
        """
        digest = hashlib.sha256()
        for key, value in sorted(self.build_args.items()):
            digest.update(f"arg {key}={value}\n".encode())
        digest.update(f"platform {self.platform}\n".encode())
        digest.update(f"{self.builder} {Path(self.recipe).name}\n".encode() + (project_dir / self.recipe).read_bytes())
        context = project_dir / self.context
        for relative in context_files(context):
            digest.update(f"file {relative}\n".encode())
            digest.update((context / relative).read_bytes())
        return TAG_PREFIX + digest.hexdigest()[:16]


def context_files(context: Path) -> list[str]:
    """The files of a build context that count, sorted, as posix paths relative to it."""
    found = []
    for path in context.rglob("*"):
        relative = path.relative_to(context)
        if path.is_file() and not _IGNORED_PARTS.intersection(relative.parts):
            found.append(relative.as_posix())
    return sorted(found)


def relative_to_project(project_dir: Path, path: Path) -> str:
    """`path` relative to the project, refusing anything outside it (a build must not read the host)."""
    return path.resolve().relative_to(project_dir.resolve()).as_posix()


def service_commit(project_dir: Path, paths: list[str]) -> str:
    """The last commit that changed any of `paths`, `-dirty` when they have uncommitted changes.

    Outside a git checkout (a source tarball) the build falls back to
    DOCKYARD_COMMIT or GITHUB_SHA, then to "unknown". A shallow clone cannot
    tell, so CI checks out with full history (`fetch-depth: 0`).
    """
    try:
        commit = _git(project_dir, "log", "-1", "--format=%H", "--", *paths)
        dirty = _git(project_dir, "status", "--porcelain", "--", *paths)
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "", ""
    if not commit:
        return os.environ.get("DOCKYARD_COMMIT") or os.environ.get("GITHUB_SHA") or "unknown"
    return f"{commit}-dirty" if dirty else commit


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def resolve_build(project_dir: Path, service: str, build: BuildSettings) -> BuildInputs:
    """A service's validated build settings, checked against the files they name."""
    where = f"dockyard:services.{service}"
    context = project_dir / build.context
    if not context.is_dir():
        raise ConfigError(f"{where}.context: {build.context} is not a directory",
                          hint=f"create images/{service}/ or record an image with dockyard:prebuilt.{service}")
    recipe_key, recipe = (("packerTemplate", build.packer_template) if build.builder == "packer" and build.packer_template
                          else ("dockerfile", build.dockerfile))
    if not (project_dir / recipe).is_file():
        raise ConfigError(f"{where}.{recipe_key}: {recipe} does not exist")
    try:
        context_rel = relative_to_project(project_dir, context)
        recipe_rel = relative_to_project(project_dir, project_dir / recipe)
    except ValueError:
        raise ConfigError(f"{where}: {build.context} and {recipe} must be inside the project directory") from None
    commit = service_commit(project_dir, sorted({context_rel, recipe_rel}))
    return BuildInputs(service=service, builder=build.builder, context=context_rel, recipe=recipe_rel,
                       platform=build.platform, build_args={COMMIT_ARG: commit, **build.build_args})
