"""One contract, both release stores: SSM (moto) and the file store."""

from __future__ import annotations

import multiprocessing
import threading

import boto3
import pytest

from dockyard.errors import Conflict, DockyardError
from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from dockyard.release.stores.ssm import SsmStore
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold
from tests.release.conftest import REGION, images


def release(build: str) -> Release:
    return Release.from_dict({"schema": 1, "images": images(build), "source": f"test:{build}"})


@pytest.fixture()
def store(backend, aws, tmp_path):
    if backend == "ssm":
        return SsmStore(boto3.client("ssm", region_name=REGION), "/dockyard/prod/release")
    return FileStore(tmp_path / "releases" / "prod")


def test_empty_store(store):
    assert store.current() is None and store.history() == [] and store.labels() == {} and store.hold() is None
    assert store.get(1) is None


def test_append_numbers_versions_and_keeps_every_one(store):
    assert store.append(release("a"), expected=None).version == 1
    assert store.append(release("b"), expected=1).version == 2
    assert store.current().version == 2 and store.current().release.image_strings() == images("b")
    assert store.get(1).release.image_strings() == images("a")
    assert [r.version for r in store.history()] == [2, 1]
    assert [r.version for r in store.history(limit=1)] == [2]


def test_labels_move_forward(store):
    for i, build in enumerate("abc"):
        store.append(release(build), expected=i or None)
    store.label(DEPLOYED, 2)
    store.label(KNOWN_GOOD, 2)
    store.label(DEPLOYED, 3)
    assert store.labels() == {DEPLOYED: 3, KNOWN_GOOD: 2}
    assert {r.version: r.labels for r in store.history()} == {3: (DEPLOYED,), 2: (KNOWN_GOOD,), 1: ()}


def test_hold_round_trips_and_clears(store):
    store.append(release("a"), expected=None)
    store.set_hold(Hold(version=1, reason="bad deploy", by="alice", at="2026-11-23T10:00:00Z"))
    assert store.hold() == Hold(version=1, reason="bad deploy", by="alice", at="2026-11-23T10:00:00Z")
    store.set_hold(None)
    assert store.hold() is None


def test_delete_removes_everything(store):
    store.append(release("a"), expected=None)
    store.set_hold(Hold(version=1, reason="x", by="y", at="z"))
    store.delete()
    assert store.current() is None and store.hold() is None


def test_history_pages_past_fifty(store):
    for i in range(60):
        store.append(release(f"b{i}"), expected=i or None)
    history = store.history()
    assert [r.version for r in history] == list(range(60, 0, -1))
    assert history[-1].release.image_strings() == images("b0")


def test_stale_write_is_a_conflict_or_reported_as_raced(store, backend):
    store.append(release("a"), expected=None)
    store.append(release("b"), expected=1)
    if backend == "file":
        with pytest.raises(Conflict, match="changed"):
            store.append(release("c"), expected=1)
        assert store.current().version == 2
    else:
        appended = store.append(release("c"), expected=1)
        assert appended.version == 3 and appended.raced == (2,)


def test_racing_appends_never_lose_a_version(store, backend):
    store.append(release("base"), expected=None)
    outcomes: list[object] = []

    def promote(i: int) -> None:
        try:
            outcomes.append(store.append(release(f"r{i}"), expected=1))
        except Conflict as err:
            outcomes.append(err)

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    written = [o for o in outcomes if not isinstance(o, Conflict)]
    refused_or_raced = [o for o in outcomes if isinstance(o, Conflict) or o.raced]
    versions = [r.version for r in store.history()]
    assert versions == list(range(len(versions), 0, -1))  # no gap, no duplicate
    assert len(versions) == 1 + len(written)
    assert len(refused_or_raced) >= 5  # one may win cleanly; every other one learns it lost the race


def test_ssm_version_limit_with_a_labelled_oldest_version_says_what_to_do(aws):
    store = SsmStore(boto3.client("ssm", region_name=REGION), "/dockyard/prod/release")
    for i in range(100):
        store.append(release(f"b{i}"), expected=i or None)
    store.label(KNOWN_GOOD, 1)
    with pytest.raises(DockyardError) as err:
        store.append(release("next"), expected=100)
    assert "keeps 100 versions and the oldest, v1, still carries known-good" in err.value.message
    assert "unlabel-parameter-version" in err.value.hint
    store.label(KNOWN_GOOD, 100)  # moving the label forward frees the oldest version
    assert store.append(release("next"), expected=100).version == 101


def _append_in_process(directory: str, build: str, queue) -> None:
    try:
        queue.put(FileStore(__import__("pathlib").Path(directory)).append(release(build), expected=1).version)
    except Conflict:
        queue.put("conflict")


def test_file_store_processes_racing_on_one_version(tmp_path):
    directory = tmp_path / "releases"
    FileStore(directory).append(release("base"), expected=None)
    queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_append_in_process, args=(str(directory), f"p{i}", queue))
                 for i in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(30)
    results = sorted(str(queue.get(timeout=5)) for _ in processes)
    assert results.count("2") == 1 and results.count("conflict") == 3
    assert [r.version for r in FileStore(directory).history()] == [2, 1]
    assert not list((directory / "versions").glob(".incoming-*"))
