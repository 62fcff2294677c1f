"""The release store: an environment's numbered releases, their labels and the rollback hold.

One interface, two backends (SSM parameter versions, numbered files). History
is only ever appended to: a rollback writes an old release again as a new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dockyard.manifest import Release

DEPLOYED = "deployed"
KNOWN_GOOD = "known-good"
LABELS = (DEPLOYED, KNOWN_GOOD)


@dataclass(frozen=True)
class StoredRelease:
    version: int
    release: Release
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hold:
    """Set by a rollback: promotions into the environment refuse until released."""

    version: int
    reason: str
    by: str
    at: str

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "reason": self.reason, "by": self.by, "at": self.at}

    @classmethod
    def from_dict(cls, data: dict) -> Hold:
        return cls(version=int(data["version"]), reason=str(data.get("reason", "")), by=str(data.get("by", "")),
                   at=str(data.get("at", "")))


@dataclass(frozen=True)
class Appended:
    """The outcome of an append: our version, and whether someone else wrote since we read."""

    version: int
    raced: tuple[int, ...] = field(default_factory=tuple)


class ReleaseStore(Protocol):
    """Where an environment's releases live. `where` names it in messages."""

    where: str

    def current(self) -> StoredRelease | None:
        """The newest release, or None when the environment has none yet."""

    def get(self, version: int) -> StoredRelease | None:
        """One version, or None when it does not exist (or is no longer kept)."""

    def history(self, limit: int | None = None) -> list[StoredRelease]:
        """Releases newest first, with their labels."""

    def append(self, release: Release, *, expected: int | None) -> Appended:
        """Write `release` as the next version.

        `expected` is the version the caller read as current (None: no release
        yet). Raises Conflict when the store can refuse a stale write; returns
        the versions written by others in between when it can only detect them.
        """

    def label(self, label: str, version: int) -> None:
        """Move `label` to `version`."""

    def labels(self) -> dict[str, int]:
        """label -> the version that carries it."""

    def hold(self) -> Hold | None: ...

    def set_hold(self, hold: Hold | None) -> None: ...

    def delete(self) -> None:
        """Remove every version, label and hold (branch stacks only)."""
