"""The changelog of a promotion: per service, the commits between the image that runs and the one that
comes, limited to that service's build inputs (its context and Dockerfile or Packer template), newest first.

Each image names its commit: the attested commit the release already records for it, else its
`org.opencontainers.image.revision` label read by digest from the registry (the `COMMIT_SHA` build
argument every build sets). git answers the rest. Where it cannot (not a checkout, a shallow clone,
a commit it does not have, an image without a revision), the changelog says so in one line per
service and the promotion goes on.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import ChangeSummary, Release, Verification

REVISION_LABEL = "org.opencontainers.image.revision"
SHOWN = 10  # commits listed per service; the rest are counted
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_FIELD, _RECORD = "\x1f", "\x1e"
GIT_TIMEOUT = 30


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str
    date: str  # committer date, ISO 8601

    @property
    def short(self) -> str:
        return self.sha[:7]

    def to_json(self) -> dict[str, str]:
        return {"sha": self.sha, "short": self.short, "subject": self.subject, "author": self.author,
                "date": self.date}

    def line(self) -> str:
        return f"{self.short} {self.subject} ({self.author}, {self.date[:10]})"


@dataclass(frozen=True)
class ServiceChanges:
    """One service: what arrives (in the new image, not in the old) and what leaves (the reverse)."""

    service: str
    old: str | None  # the running image's commit
    new: str | None  # the coming image's commit
    arriving: tuple[Commit, ...] = ()
    arriving_total: int | None = None  # None: not known (see note)
    leaving: tuple[Commit, ...] = ()
    leaving_total: int | None = None
    oldest: str | None = None  # commit time of the oldest arriving commit
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"from": self.old, "to": self.new, "commits": [c.to_json() for c in self.arriving],
                "count": self.arriving_total, "leaving": [c.to_json() for c in self.leaving],
                "leavingCount": self.leaving_total, "note": self.note}

    def summary(self) -> ChangeSummary:
        newest = self.arriving[0].date if self.arriving else None
        return ChangeSummary(old=self.old, new=self.new, commits=self.arriving_total, leaving=self.leaving_total,
                             oldest=self.oldest or newest, newest=newest, note=self.note)

    def lines(self, direction: str = "arrive") -> list[str]:
        """`arrive`: what a promote brings; `leave`: what a rollback takes away (the same list, reversed)."""
        commits, total = ((self.arriving, self.arriving_total) if direction == "arrive"
                          else (self.leaving, self.leaving_total))
        span = f"{_short(self.old)}..{_short(self.new)}"
        if total is None:
            return [f"{self.service}: {self.note or 'history not available'}"]
        if total == 0:
            other = self.leaving_total if direction == "arrive" else self.arriving_total
            extra = f" ({other} commit(s) of its inputs leave)" if direction == "arrive" and other else ""
            return [f"{self.service}: no commit to its build inputs {'arrives' if direction == 'arrive' else 'leaves'} "
                    f"({span}){extra}"]
        verb = "these arrive" if direction == "arrive" else "these leave"
        lines = [f"{self.service}: {total} commit(s) to its build inputs ({span}); {verb}:"]
        lines += [f"  {c.line()}" for c in commits]
        if total > len(commits):
            lines.append(f"  ... and {total - len(commits)} more")
        if direction == "arrive" and self.leaving_total:
            lines.append(f"  ({self.leaving_total} commit(s) of the running image are not in the new one)")
        return lines


@dataclass
class Changelog:
    services: list[ServiceChanges] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {c.service: c.to_json() for c in self.services}

    def record(self) -> dict[str, ChangeSummary]:
        return {c.service: c.summary() for c in self.services}

    def lines(self, direction: str = "arrive") -> list[str]:
        return [line for c in self.services for line in c.lines(direction)]


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "?"


# ----------------------------------------------------------------------------- git


class History:
    """The project's git history, asked with the git command (what CI and developers already have)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._shallow: bool | None = None
        self._problem: str | None = None
        self._checked = False

    def _git(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=self.directory, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT)

    def problem(self) -> str | None:
        """Why history cannot be read at all, or None."""
        if not self._checked:
            self._checked = True
            try:
                done = self._git("rev-parse", "--is-shallow-repository")
            except (OSError, subprocess.TimeoutExpired) as err:
                self._problem = f"history not available: git cannot run ({err})"
                return self._problem
            if done.returncode != 0:
                self._problem = f"history not available: {self.directory} is not a git checkout"
            else:
                self._shallow = done.stdout.strip() == "true"
        return self._problem

    @property
    def shallow(self) -> bool:
        self.problem()
        return bool(self._shallow)

    def has(self, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def is_ancestor(self, old: str, new: str) -> bool:
        return self._git("merge-base", "--is-ancestor", old, new).returncode == 0

    def commits(self, include: str, exclude: str | None, paths: Iterable[str], limit: int) -> tuple[list[Commit], int]:
        """Commits reachable from `include` and not from `exclude` that touched `paths`: newest `limit`, and
        how many there are in all."""
        spec = [include] + ([f"^{exclude}"] if exclude else [])
        paths = sorted(paths)
        count = self._git("rev-list", "--count", *spec, "--", *paths)
        if count.returncode != 0:
            raise DockyardError(count.stderr.strip().splitlines()[-1] if count.stderr.strip() else "git rev-list failed")
        total = int(count.stdout.strip() or 0)
        if total == 0 or limit <= 0:
            return [], total
        fmt = _FIELD.join(("%H", "%s", "%an", "%cI")) + _RECORD
        done = self._git("log", f"--max-count={limit}", f"--format={fmt}", *spec, "--", *paths)
        found = []
        for record in done.stdout.split(_RECORD):
            parts = record.strip("\n").split(_FIELD)
            if len(parts) == 4:
                found.append(Commit(sha=parts[0], subject=parts[1], author=parts[2], date=parts[3]))
        return found, total

    def oldest_time(self, include: str, exclude: str | None, paths: Iterable[str]) -> str | None:
        spec = [include] + ([f"^{exclude}"] if exclude else [])
        done = self._git("log", "--reverse", "--format=%cI", *spec, "--", *sorted(paths))
        first = done.stdout.split("\n", 1)[0].strip() if done.returncode == 0 else ""
        return first or None

    def commit_time(self, sha: str) -> str | None:
        done = self._git("show", "-s", "--format=%cI", sha)
        return done.stdout.strip() or None if done.returncode == 0 else None


def _clean(revision: str | None) -> tuple[str | None, str | None]:
    """A recorded revision as a commit git can look up, and a note when it is not one."""
    if not revision or revision == "unknown":
        return None, "its image records no commit (no org.opencontainers.image.revision label)"
    base = revision[:-len("-dirty")] if revision.endswith("-dirty") else revision
    if not _SHA.match(base):
        return None, f"its image's revision {revision[:40]!r} is not a commit"
    return base, None


def service_changes(history: History, service: str, old_rev: str | None, new_rev: str | None,
                    paths: Iterable[str], *, limit: int = SHOWN) -> ServiceChanges:
    """What arrives and leaves between two image revisions, for one service's build inputs."""
    old, old_note = _clean(old_rev) if old_rev is not None else (None, None)
    new, new_note = _clean(new_rev)
    unknown = ServiceChanges(service=service, old=old_rev, new=new_rev)
    if new is None:
        return _with(unknown, note=new_note)
    problem = history.problem()
    if problem:
        return _with(unknown, note=problem)
    missing = [sha for sha in (new, old) if sha and not history.has(sha)]
    if missing:
        why = ("history not available: shallow clone (check out with fetch-depth: 0)" if history.shallow
               else f"history not available: commit {missing[0][:12]} is not in this repository "
                    "(fetch it, or the image was built from another one)")
        return _with(unknown, note=why)
    if old is None:
        if old_rev is not None:  # something ran, but its commit is unknown
            return _with(unknown, note=f"history not available: the running image: {old_note}")
        # A first release: nothing ran to compare with; the image's own commit dates the change.
        return _with(unknown, note="first release here: nothing ran to compare with", oldest=history.commit_time(new))
    if history.shallow and not (history.is_ancestor(old, new) or history.is_ancestor(new, old)):
        return _with(unknown, note="history not available: shallow clone (check out with fetch-depth: 0)")
    try:
        arriving, arriving_total = history.commits(new, old, paths, limit)
        leaving, leaving_total = history.commits(old, new, paths, limit)
    except (DockyardError, OSError, subprocess.TimeoutExpired) as err:
        return _with(unknown, note=f"history not available: {getattr(err, 'message', err)}")
    oldest = history.oldest_time(new, old, paths) if arriving_total else None
    dirty = " (built with uncommitted changes)" if (new_rev or "").endswith("-dirty") else None
    return ServiceChanges(service=service, old=old_rev, new=new_rev, arriving=tuple(arriving),
                          arriving_total=arriving_total, leaving=tuple(leaving), leaving_total=leaving_total,
                          oldest=oldest, note=dirty.strip() if dirty else None)


def _with(base: ServiceChanges, **changes: Any) -> ServiceChanges:
    from dataclasses import replace

    return replace(base, **changes)


# ----------------------------------------------------------------------------- the command's side


def build_paths(project: Any, service: str) -> list[str]:
    """A service's build inputs as paths in the repository: its context and Dockerfile (or Packer template),
    from the registry stack's settings; `images/<service>` when the registry stack does not say."""
    try:
        settings = project.environment("registry").settings
        build = settings.builds.get(service)
    except (DockyardError, AttributeError):
        build = None
    if build is None:
        return [f"images/{service}"]
    paths = {build.context, build.dockerfile}
    if build.builder == "packer" and build.packer_template:
        paths.add(build.packer_template)
    return sorted(p.rstrip("/") or "." for p in paths)


def image_revision(registries: Any, ref: str, recorded: Verification | None,
                   known: str | None = None) -> tuple[str | None, str | None]:
    """The commit an image was built from: the attested commit recorded for it, else the one its release
    recorded from its label (`known`), else its revision label read by digest from the registry. Returns
    (commit, None) or (None, why it could not be read)."""
    if recorded is not None and recorded.commit:
        return recorded.commit, None
    if known is not None:  # "": the release read the image's config, and it has no revision label
        return known or "unknown", None
    try:
        from dockyard.release.registries.oci import api_repository

        image = ImageRef.parse_pinned(ref)
        config = registries.for_ref(image).image_config(api_repository(image), image.digest or "")
    except (DockyardError, AttributeError, KeyError, ValueError, OSError) as err:
        return None, f"could not read its image's revision ({getattr(err, 'message', err)})"
    labels = (config.get("config") or {}).get("Labels") or {}
    return labels.get(REVISION_LABEL) or "unknown", None


def _known_commit(release: Release, service: str) -> str | None:
    """The commit `release` recorded for `service`'s image; "" if it read the image and found none; None if
    it never read it."""
    found = release.commits().get(service)
    return found if found is not None else ("" if service in release.image_config else None)


def compute(ctx: Any, old: Release | None, new_images: Mapping[str, str],
            proven: Mapping[str, Verification] | None = None, *, services: Iterable[str] | None = None,
            new_recorded: Mapping[str, Verification] | None = None,
            new_commits: Mapping[str, str] | None = None) -> Changelog:
    """The changelog from `old` (what runs; None: nothing yet) to `new_images`, for the services whose image
    differs (or `services`). Never raises: what cannot be known becomes a note."""
    history = History(ctx.project.dir)
    old_images = old.image_strings() if old else {}
    names = sorted(services if services is not None else [s for s, r in new_images.items() if old_images.get(s) != r])
    log = Changelog()
    for service in names:
        new_ref = new_images.get(service)
        if new_ref is None:
            continue
        recorded = (proven or {}).get(service) or (new_recorded or {}).get(service)
        new_rev, new_problem = image_revision(ctx.registries, new_ref, recorded, (new_commits or {}).get(service))
        old_rev, old_problem = None, None
        if service in old_images and old is not None:
            old_rev, old_problem = image_revision(ctx.registries, old_images[service], old.verified.get(service),
                                                  _known_commit(old, service))
            old_rev = old_rev or "unknown"
        if new_problem or old_problem:
            log.services.append(ServiceChanges(service=service, old=old_rev, new=new_rev,
                                               note=f"history not available: {new_problem or old_problem}"))
            continue
        try:
            log.services.append(service_changes(history, service, old_rev, new_rev,
                                                build_paths(ctx.project, service)))
        except Exception as err:  # noqa: BLE001 - a changelog never stops a promotion
            log.services.append(ServiceChanges(service=service, old=old_rev, new=new_rev,
                                               note=f"history not available: {type(err).__name__}: {err}"))
    return log
