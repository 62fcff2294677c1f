"""The four DORA figures over a hand-built history in the real file store, with answers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockyard.config.spans import describe
from dockyard.manifest import Release
from dockyard.release.insights.metrics import Figure, compute
from dockyard.release.stores.file import FileStore
from tests.support.pulumi_harness import fake_digest

NOW = datetime(2026, 2, 1, tzinfo=timezone.utc)


def images(build: str) -> dict[str, str]:
    return {s: f"ghcr.io/acme/{s}@{fake_digest(f'{s}-{build}')}" for s in ("web", "worker")}


def write(store: FileStore, at: str, build: str, *, changelog: dict | None = None,
          rollback: tuple[int, int, str] | None = None) -> int:
    release = Release.from_dict({"schema": 1, "images": images(build), "at": at, "source": "dev:v1",
                                 **({"changelog": changelog} if changelog else {}),
                                 **({"rollback": dict(zip(("of", "to", "cause"), rollback))} if rollback else {})})
    current = store.current()
    return store.append(release, expected=current.version if current else None).version


def prod_history(tmp_path) -> FileStore:
    store = FileStore(tmp_path / "prod")
    write(store, "2025-12-01T00:00:00Z", "old")                                          # v1: before the period
    write(store, "2026-01-05T00:00:00Z", "a", changelog={"web": {"oldest": "2026-01-04T00:00:00Z"}})  # v2: 1 d
    write(store, "2026-01-10T00:00:00Z", "b", changelog={                                  # v3: fails
        "web": {"oldest": "2026-01-09T12:00:00+00:00"}, "worker": {"oldest": "2026-01-08T00:00:00Z"}})
    write(store, "2026-01-10T00:30:00Z", "a", rollback=(3, 2, "automatic"))                # v4: restored in 30 m
    write(store, "2026-01-15T00:00:00Z", "c",                                              # v5: 6 h
          changelog={"web": {"newest": "2026-01-14T19:00:00+01:00", "note": "first release here"}})
    write(store, "2026-01-20T00:00:00Z", "d", changelog={"web": {"note": "shallow clone"}})  # v6: rolled back
    write(store, "2026-01-20T02:00:00Z", "c", rollback=(6, 5, "manual"))                    # v7: restored in 2 h
    write(store, "2026-01-25T00:00:00Z", "e")                                              # v8: aborted
    write(store, "2026-01-25T00:10:00Z", "c", rollback=(8, 7, "aborted"))                   # v9: restored in 10 m
    write(store, "2026-01-28T00:00:00Z", "f", changelog={"web": {"note": "shallow clone"}})  # v10: no commit time
    return store


def test_the_four_figures_and_their_counts(tmp_path):
    m = compute("prod", prod_history(tmp_path).history(), now=NOW, since=timedelta(days=30))
    assert (m.deployments, m.rollbacks) == (6, 3)  # v2 v3 v5 v6 v8 v10; v4 v7 v9
    assert round(m.per_day * 7, 2) == 1.4
    assert (m.failed, m.causes) == (3, {"automatic": 1, "manual": 1, "aborted": 1})
    assert m.failure_rate == 0.5
    # Lead time only of promotions that stayed: v2 (24 h), v5 (6 h); v10 has no commit time.
    assert m.lead_time.samples == 2 and m.lead_time.median == timedelta(hours=15)
    assert m.lead_time_unmeasured == 1
    assert m.restore.samples == 3 and m.restore.median == timedelta(minutes=30)
    data = m.to_json()
    assert data["changeFailureRate"] == {"failed": 3, "deployments": 6, "rate": 0.5,
                                         "causes": {"aborted": 1, "automatic": 1, "manual": 1}}
    assert data["leadTime"]["medianSeconds"] == 15 * 3600 and data["timeToRestore"]["median"] == "30m"
    text = "\n".join(m.lines())
    assert "change failure rate    50% (3 of 6: 1 aborted, 1 automatic, 1 manual)" in text


def test_the_period_narrows_what_counts(tmp_path):
    m = compute("prod", prod_history(tmp_path).history(), now=NOW, since=timedelta(days=10))
    assert (m.deployments, m.failed, m.rollbacks) == (2, 1, 1)  # v8 (aborted) and v10
    assert m.lead_time.samples == 0 and m.lead_time.median is None and m.restore.median == timedelta(minutes=10)


def test_a_failure_not_yet_followed_by_a_good_release_is_counted_unrestored(tmp_path):
    store = FileStore(tmp_path / "dev")
    write(store, "2026-01-30T00:00:00Z", "a")
    write(store, "2026-01-31T00:00:00Z", "b")
    write(store, "2026-01-31T01:00:00Z", "c")
    write(store, "2026-01-31T02:00:00Z", "b", rollback=(3, 2, "manual"))
    write(store, "2026-01-31T03:00:00Z", "a", rollback=(4, 1, "manual"))  # the rollback itself undone
    m = compute("dev", store.history(), now=NOW, since=timedelta(days=7))
    assert (m.deployments, m.failed, m.unrestored) == (3, 1, 0)
    assert m.restore.median == timedelta(hours=2)  # v3 -> v5 (v4 was undone too)


def test_an_empty_history_has_no_figures(tmp_path):
    m = compute("prod", [], now=NOW, since=timedelta(days=30))
    assert m.deployments == 0 and m.failure_rate is None and m.to_json()["changeFailureRate"]["rate"] is None


# The cases below came with the dashboard's metrics page, which now shows these same figures.


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def since_commit(hours: float) -> dict:
    return {"web": {"oldest": ago(hours)}}


def test_rollbacks_are_not_deployments_and_the_releases_they_undo_are_failures(tmp_path):
    store = FileStore(tmp_path / "dev")
    write(store, ago(50), "a")
    write(store, ago(40), "b")
    write(store, ago(39.5), "a", rollback=(2, 1, "automatic"))
    write(store, ago(10), "c")
    m = compute("dev", store.history(), now=NOW, since=timedelta(days=30))
    assert (m.deployments, m.rollbacks, m.failed) == (3, 1, 1)
    assert m.failure_rate == 1 / 3
    assert m.restore.median == timedelta(minutes=30)


def test_time_to_restore_is_the_median_over_failures_and_a_release_undone_twice_fails_once(tmp_path):
    store = FileStore(tmp_path / "prod")
    write(store, ago(100), "a")
    write(store, ago(90), "b")
    write(store, ago(89), "a", rollback=(2, 1, "manual"))  # 1 h
    write(store, ago(80), "a", rollback=(2, 1, "manual"))  # undoes 2 again: not a second failure
    write(store, ago(70), "c")
    write(store, ago(67), "a", rollback=(5, 1, "aborted"))  # 3 h
    write(store, ago(60), "d")
    write(store, ago(55), "a", rollback=(7, 1, "reverted"))  # 5 h
    m = compute("prod", store.history(), now=NOW, since=timedelta(days=30))
    assert (m.deployments, m.failed, m.rollbacks) == (4, 3, 4)
    assert m.causes == {"manual": 1, "aborted": 1, "reverted": 1}
    assert m.restore.samples == 3 and m.restore.median == timedelta(hours=3)


def test_lead_time_runs_from_the_commit_to_this_environment_so_it_grows_along_the_pipeline(tmp_path):
    dev, prod = FileStore(tmp_path / "dev"), FileStore(tmp_path / "prod")
    write(dev, ago(30), "a", changelog=since_commit(31))
    write(dev, ago(20), "b", changelog=since_commit(21))
    write(prod, ago(26), "a", changelog=since_commit(31))  # 5 h after the commit
    write(prod, ago(10), "b", changelog=since_commit(21))  # 11 h after the commit
    since = timedelta(days=30)
    assert compute("dev", dev.history(), now=NOW, since=since).lead_time == Figure(2, timedelta(hours=1))
    assert compute("prod", prod.history(), now=NOW, since=since).lead_time == Figure(2, timedelta(hours=8))


def test_a_rollback_is_not_a_change_with_a_lead_time_nor_is_the_promotion_it_undid(tmp_path):
    prod = FileStore(tmp_path / "prod")
    write(prod, ago(30), "a", changelog=since_commit(31))
    write(prod, ago(20), "b", changelog=since_commit(22))
    write(prod, ago(19), "a", rollback=(2, 1, "manual"))
    write(prod, ago(1), "c", changelog=since_commit(2))
    m = compute("prod", prod.history(), now=NOW, since=timedelta(days=30))
    assert m.lead_time == Figure(2, timedelta(hours=1))  # a and c; not b (undone), not the rollback


def test_releases_without_a_readable_time_are_left_out_of_every_figure(tmp_path):
    store = FileStore(tmp_path / "dev")
    write(store, "", "a")
    write(store, "yesterday", "b", changelog=since_commit(30))
    m = compute("dev", store.history(), now=NOW, since=timedelta(days=30))
    assert (m.deployments, m.rollbacks, m.failure_rate, m.per_day) == (0, 0, None, 0)
    assert m.lead_time == Figure(0, None) and m.restore == Figure(0, None)


@pytest.mark.parametrize("seconds, text", [(42, "42s"), (600, "10m"), (3600, "1h"), (3660 * 3, "3h 3m"),
                                           (86400 * 2 + 3600 * 5, "2d 5h"), (86400, "1d"), (-5, "0s")])
def test_durations_read_as_people_say_them(seconds, text):
    assert describe(timedelta(seconds=seconds)) == text
