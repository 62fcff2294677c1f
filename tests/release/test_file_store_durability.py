"""The file store survives a power loss: a model of what a crash may keep, driven by the real store.

The model follows POSIX (and ext4/xfs practice): a file's bytes are on disk once the file is
fsynced, a directory entry (a rename, a link, a new file) once its directory is. Until then a
crash may keep either the old or the new state of each, in any combination. The store must never
have a moment where one of those combinations is an empty or partial index or version, and what a
command reported as written must be on disk when it returns.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold
from dockyard.release_layout import INDEX_FILE, VERSIONS_DIR, version_filename
from tests.release.conftest import images


def release(build: str) -> Release:
    return Release.from_dict({"schema": 1, "images": images(build), "source": f"test:{build}"})


class PowerLossModel:
    """Records, through the real os calls, which bytes and which names a crash would keep."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.durable_bytes: dict[int, bytes] = {}  # inode -> content at its last fsync
        self.durable_entries: dict[Path, dict[str, int]] = {}  # directory -> entries at its last fsync
        self.since_sync: dict[Path, list[dict[str, int]]] = {}  # directory -> entry states since then
        self.fsynced: list[str] = []
        self._snapshot_existing()
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            real_fsync(fd)
            self._synced(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        for name in ("replace", "rename", "link", "unlink", "mkdir"):
            monkeypatch.setattr(os, name, self._tracking(getattr(os, name)))

    def _snapshot_existing(self) -> None:
        for directory in [self.root, *[p for p in self.root.rglob("*") if p.is_dir()]]:
            self.durable_entries[directory] = self._entries(directory)
            self.since_sync[directory] = []
            for path in directory.iterdir():
                if path.is_file():
                    self.durable_bytes[path.stat().st_ino] = path.read_bytes()

    @staticmethod
    def _entries(directory: Path) -> dict[str, int]:
        return {p.name: p.stat().st_ino for p in directory.iterdir()} if directory.is_dir() else {}

    def _tracking(self, call):
        def tracked(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            finally:
                self._changed()
        return tracked

    def _changed(self) -> None:
        for directory in [self.root, *[p for p in self.root.rglob("*") if p.is_dir()]]:
            self.since_sync.setdefault(directory, []).append(self._entries(directory))
            self.durable_entries.setdefault(directory, {})

    def _synced(self, fd: int) -> None:
        info = os.fstat(fd)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        self.fsynced.append(str(path))
        if stat.S_ISDIR(info.st_mode):
            self.durable_entries[path] = self._entries(path)
            self.since_sync[path] = []
        else:
            self.durable_bytes[info.st_ino] = os.pread(fd, info.st_size, 0)

    def possible(self, path: Path) -> list[bytes | None]:
        """Every content `path` may have after a crash now (None: the name may be missing)."""
        directory = path.parent
        states = [self.durable_entries.get(directory, {}), *self.since_sync.get(directory, [])]
        if directory != self.root and directory not in self.durable_entries:
            states.append({})
        outcomes: list[bytes | None] = []
        for entries in states:
            inode = entries.get(path.name)
            # A file never fsynced may come back empty (delayed allocation) or hold only part.
            outcomes.append(None if inode is None else self.durable_bytes.get(inode, b""))
        return outcomes


def test_a_power_loss_never_leaves_an_empty_index_or_loses_what_was_reported_written(tmp_path, monkeypatch):
    directory = tmp_path / "prod"
    store = FileStore(directory)
    store.append(release("a"), expected=None)
    store.label(DEPLOYED, 1)
    store.label(KNOWN_GOOD, 1)
    store.set_hold(Hold(version=1, reason="bad deploy", by="alice", at="2026-11-23T10:00:00Z"))
    os.sync()

    model = PowerLossModel(tmp_path, monkeypatch)
    assert model.possible(directory / INDEX_FILE) != [b""]
    appended = store.append(release("b"), expected=1)
    # Reported written: the version is on disk, whole, whatever happens next.
    assert set(model.possible(directory / VERSIONS_DIR / version_filename(appended.version))) == \
        {(directory / VERSIONS_DIR / version_filename(appended.version)).read_bytes()}
    store.label(DEPLOYED, 2)
    for content in model.possible(directory / INDEX_FILE):
        # The old index or the new one, never nothing, never a half-written one.
        assert content, f"a power loss may leave {INDEX_FILE} empty"
        index = json.loads(content)
        assert index["labels"][KNOWN_GOOD] == 1 and index["hold"]["reason"] == "bad deploy"
    assert set(model.possible(directory / INDEX_FILE)) == {(directory / INDEX_FILE).read_bytes()}, \
        "the label move was reported done, but a power loss could still undo it"


def test_the_first_release_of_a_new_store_is_on_disk_with_its_directories(tmp_path, monkeypatch):
    model = PowerLossModel(tmp_path, monkeypatch)
    directory = tmp_path / "releases" / "dev"
    FileStore(directory).append(release("a"), expected=None)
    for path in (tmp_path / "releases", directory, directory / VERSIONS_DIR):
        assert None not in model.possible(path), f"{path} may vanish in a power loss"
    version = directory / VERSIONS_DIR / version_filename(1)
    assert set(model.possible(version)) == {version.read_bytes()}


def test_a_crash_before_the_rename_keeps_the_old_index_whole_and_leaves_no_litter(tmp_path, monkeypatch):
    directory = tmp_path / "prod"
    store = FileStore(directory)
    store.append(release("a"), expected=None)
    store.append(release("b"), expected=1)
    store.label(KNOWN_GOOD, 1)
    store.set_hold(Hold(version=1, reason="held", by="alice", at="2026-11-23T10:00:00Z"))
    before = (directory / INDEX_FILE).read_bytes()

    def crash(*_args, **_kwargs):
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", crash)
        patched.setattr(os, "rename", crash)
        with pytest.raises(OSError):
            store.label(DEPLOYED, 2)
    assert (directory / INDEX_FILE).read_bytes() == before
    assert store.labels() == {KNOWN_GOOD: 1} and store.hold().reason == "held"
    assert sorted(p.name for p in directory.iterdir()) == [".lock", INDEX_FILE, VERSIONS_DIR]
    store.label(DEPLOYED, 2)
    assert store.labels() == {KNOWN_GOOD: 1, DEPLOYED: 2}
