"""What a promote between two neighbours would bring, in commits: the changelog `promote` shows (the same
call, `dockyard.release.insights.hooks.changelog`), kept while what runs and what comes stay the same."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.manifest import Release, Verification
from dockyard.release.insights import hooks
from dockyard.release.insights.changelog import Changelog

KEPT = 64  # changelogs kept; past that the oldest go (the digests on a page change far more slowly)


class Changelogs:
    """Changelogs by (environment, what runs, what comes). A changelog with a service whose history was not
    available (a registry that did not answer, a commit not fetched yet) is asked again the next time."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], Changelog] = {}

    def between(self, ctx: Any, into: str, current: Release | None, new_images: Mapping[str, str],
                recorded: Mapping[str, Verification] | None) -> Changelog:
        running = current.image_strings() if current else {}
        key = (into, tuple(sorted(running.items())), tuple(sorted(new_images.items())))
        if key in self._kept:
            return self._kept[key]
        log = hooks.changelog(ctx, current, new_images, recorded=recorded, show=False)
        if log.services and all(change.arriving_total is not None for change in log.services):
            while len(self._kept) >= KEPT:
                self._kept.pop(next(iter(self._kept)))
            self._kept[key] = log
        return log
