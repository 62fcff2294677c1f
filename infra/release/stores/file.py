"""The file release store: numbered JSON versions and a small index, for laptops and GitOps repositories.

Versions are created with a hard link from a fully written temporary file:
the link either creates the version whole or fails because it exists, so two
writers can never produce half a file or the same version twice. The index
(labels and hold) is rewritten whole and renamed into place under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import Conflict, DockyardError, ManifestError
from dockyard.manifest import Release
from dockyard.release.stores.base import Appended, Hold, StoredRelease
from dockyard.release_layout import INDEX_FILE, VERSIONS_DIR, parse_version_filename, version_filename


class FileStore:
    def __init__(self, directory: Path, *, where: str | None = None) -> None:
        self.directory = directory
        self.where = where or str(directory)

    @property
    def _versions(self) -> Path:
        return self.directory / VERSIONS_DIR

    def _numbers(self) -> list[int]:
        if not self._versions.is_dir():
            return []
        return sorted(n for p in self._versions.iterdir() if (n := parse_version_filename(p.name)) is not None)

    def _read(self, version: int, labels: dict[str, int]) -> StoredRelease:
        path = self._versions / version_filename(version)
        release = Release.from_json(path.read_text(), where=f"{self.where} version {version}")
        return StoredRelease(version=version, release=release,
                             labels=tuple(sorted(l for l, v in labels.items() if v == version)))

    def current(self) -> StoredRelease | None:
        numbers = self._numbers()
        return self._read(numbers[-1], self.labels()) if numbers else None

    def get(self, version: int) -> StoredRelease | None:
        if not (self._versions / version_filename(version)).is_file():
            return None
        return self._read(version, self.labels())

    def history(self, limit: int | None = None) -> list[StoredRelease]:
        labels = self.labels()
        numbers = list(reversed(self._numbers()))
        return [self._read(n, labels) for n in (numbers if limit is None else numbers[:limit])]

    def append(self, release: Release, *, expected: int | None) -> Appended:
        numbers = self._numbers()
        newest = numbers[-1] if numbers else None
        if newest != expected:
            raise Conflict(f"{self.where} changed: release v{newest} was written after this command read "
                           f"v{expected if expected is not None else '-'}", hint="run the command again")
        version = (newest or 0) + 1
        self._versions.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._versions, prefix=".incoming-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(release.to_json() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, self._versions / version_filename(version))
            except FileExistsError:
                raise Conflict(f"{self.where} changed: another command wrote release v{version} at the same time",
                               hint="run the command again") from None
        finally:
            os.unlink(tmp)
        return Appended(version=version)

    # -------------------------------------------------------------- index: labels and hold

    def _index(self) -> dict:
        path = self.directory / INDEX_FILE
        if not path.exists():
            return {"labels": {}, "hold": None}
        try:
            data = json.loads(path.read_text())
        except ValueError as err:
            raise ManifestError(f"{path} is not valid JSON: {err}", hint="restore it from version control") from None
        if not isinstance(data, dict) or not isinstance(data.get("labels", {}), dict):
            raise ManifestError(f"{path} is not a dockyard release index")
        return {"labels": data.get("labels", {}), "hold": data.get("hold")}

    @contextlib.contextmanager
    def _locked_index(self) -> Iterator[dict]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = self._index()
            yield index
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".index-", suffix=".json")
            with os.fdopen(fd, "w") as handle:
                json.dump(index, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(tmp, self.directory / INDEX_FILE)

    def label(self, label: str, version: int) -> None:
        if version not in self._numbers():
            raise DockyardError(f"{self.where} has no version {version} to label {label}")
        with self._locked_index() as index:
            index["labels"][label] = version

    def labels(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._index()["labels"].items()}

    def hold(self) -> Hold | None:
        data = self._index()["hold"]
        return Hold.from_dict(data) if data else None

    def set_hold(self, hold: Hold | None) -> None:
        with self._locked_index() as index:
            index["hold"] = hold.to_dict() if hold else None

    def delete(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
