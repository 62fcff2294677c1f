"""Files that survive a power loss: written whole to a temporary file, fsynced, renamed or linked
into place, and the directory fsynced, so a crash keeps the old content or the new, never neither.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (renames, links, new files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """mkdir -p, with each new directory's entry made durable in its parent."""
    missing = []
    for path in [directory, *directory.parents]:
        if path.is_dir():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue  # another writer made it; its entry is theirs to sync, ours below syncs it too
        fsync_dir(path.parent)


@contextlib.contextmanager
def _synced_temporary(directory: Path, data: str, prefix: str) -> Iterator[str]:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def replace_file(path: Path, data: str, *, prefix: str = ".incoming-") -> None:
    """Write `path` whole: old content or new after a crash, never empty or partial."""
    with _synced_temporary(path.parent, data, prefix) as tmp:
        os.replace(tmp, path)
    fsync_dir(path.parent)


def create_file(path: Path, data: str, *, prefix: str = ".incoming-") -> None:
    """Create `path` whole, or raise FileExistsError when it exists (a hard link never overwrites)."""
    with _synced_temporary(path.parent, data, prefix) as tmp:
        os.link(tmp, path)
    fsync_dir(path.parent)
