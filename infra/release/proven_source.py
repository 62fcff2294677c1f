"""What `promote --from SRC` takes: what was proven in SRC, its release labelled known-good.

A newer release of SRC that has not passed verification there (written with --no-deploy, failed
with --no-rollback, stopped by an engine error or a timeout, or written before any release ever
verified) is named, not taken; `--unverified` takes it and the new release records that it did.
The registry, and a stack-following environment (what its stack deployed), have nothing to
verify against: their newest is what they offer.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import BadInput
from dockyard.release.context import Context, SourceRelease, read_source
from dockyard.release.stores.base import KNOWN_GOOD

UNVERIFIED_FLAG = "--unverified"


@dataclass(frozen=True)
class Promotable:
    source: SourceRelease
    newer_unverified: str | None = None  # e.g. "dev:v5": newer than what is taken, never verified in SRC
    unverified: bool = False  # what is taken had not passed verification in SRC (--unverified)


def read_promotable(ctx: Context, name: str, *, unverified: bool) -> Promotable:
    env = ctx.project.environment(name)
    if env.is_registry or env.store_kind == "stack":
        return Promotable(read_source(ctx, name))
    store = ctx.store(env)
    current = store.current()
    if current is None:
        return Promotable(read_source(ctx, name))  # raises: SRC has no release yet
    newest = SourceRelease(name=name, release=current.release, label=f"{name}:v{current.version}",
                           version=current.version)
    known_good = store.labels().get(KNOWN_GOOD)
    if known_good == current.version:
        return Promotable(newest)
    if unverified:
        return Promotable(newest, unverified=True)
    if known_good is None:
        raise BadInput(f"{name} has no known-good release: its newest, v{current.version}, has not passed "
                       f"verification in {name}",
                       hint=f"deploy and verify it there first (dockyard deploy {name}), or promote it unverified: "
                            f"dockyard promote ENV --from {name} {UNVERIFIED_FLAG}")
    proven = store.get(known_good)
    if proven is None:
        raise BadInput(f"{name}'s known-good release v{known_good} is no longer kept",
                       hint=f"deploy {name} again to verify its newest, or pass {UNVERIFIED_FLAG}")
    ctx.log(f"{name}: taking known-good v{known_good}; v{current.version} is newer but has not passed "
            f"verification there")
    return Promotable(SourceRelease(name=name, release=proven.release, label=f"{name}:v{known_good}",
                                    version=known_good), newer_unverified=newest.label)
