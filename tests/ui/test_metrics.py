"""Delivery metrics from hand-built release histories in the real file store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from infra.images import ImageRef
from infra.manifest import Release, Rollback
from infra.release.stores.file import FileStore
from infra.release.ui.metrics import delivery_metrics, duration_text
from tests.support.pulumi_harness import fake_digest

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def image(build: str) -> str:
    return f"ghcr.io/acme/web@{fake_digest(build)}"


class History:
    """One environment's file store, written release by release at chosen times."""

    def __init__(self, directory) -> None:
        self.store = FileStore(directory)

    def release(self, build: str, hours_ago: float | None, rollback: Rollback | None = None) -> int:
        current = self.store.current()
        at = None if hours_ago is None else (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        release = Release(images={"web": ImageRef.parse_pinned(image(build))}, source="test", at=at,
                          rollback=rollback)
        return self.store.append(release, expected=current.version if current else None).version


@pytest.fixture()
def envs(tmp_path):
    return {name: History(tmp_path / name) for name in ("dev", "prod")}


def figures(envs):
    histories = {name: h.store.history() for name, h in envs.items()}
    return {m.env: m for m in delivery_metrics(histories, now=NOW)}


def test_rollbacks_are_not_deployments_and_the_releases_they_undo_are_failures(envs):
    dev = envs["dev"]
    dev.release("a", 50)
    dev.release("b", 40)
    dev.release("a", 39.5, Rollback(of=2, to=1, cause="automatic", reason="web unhealthy"))
    dev.release("c", 10)
    m = figures(envs)["dev"]
    assert m.deployments == 3 and m.failures == 1
    assert m.change_failure_rate == pytest.approx(1 / 3)
    assert m.time_to_restore == pytest.approx(30 * 60)


def test_time_to_restore_is_the_median_over_failures_and_counts_the_first_rollback_only(envs):
    prod = envs["prod"]
    prod.release("a", 100)
    prod.release("b", 90)
    prod.release("a", 89, Rollback(of=2, to=1, cause="manual"))  # 1 h
    prod.release("a", 80, Rollback(of=2, to=1, cause="manual"))  # undoes 2 again: not a second failure
    prod.release("c", 70)
    prod.release("a", 67, Rollback(of=5, to=1, cause="aborted"))  # 3 h
    prod.release("d", 60)
    prod.release("a", 55, Rollback(of=7, to=1, cause="reverted"))  # 5 h
    m = figures(envs)["prod"]
    assert (m.deployments, m.failures) == (4, 3)
    assert m.time_to_restore == pytest.approx(3 * 3600)


def test_lead_time_runs_from_the_first_release_of_a_digest_anywhere_to_this_environment(envs):
    envs["dev"].release("a", 30)
    envs["dev"].release("b", 20)
    envs["prod"].release("a", 26)  # 4 h after dev took it
    envs["prod"].release("b", 10)  # 10 h after dev took it
    m = figures(envs)
    assert m["dev"].lead_time == 0
    assert m["prod"].lead_time == pytest.approx(7 * 3600)  # median of 4 h and 10 h


def test_a_rollback_to_an_old_digest_is_not_a_change_with_a_lead_time(envs):
    prod = envs["prod"]
    prod.release("a", 30)
    prod.release("b", 20)
    prod.release("a", 19, Rollback(of=2, to=1, cause="manual"))
    prod.release("c", 1)  # a new digest after the rollback: changed against the rollback's "a"
    assert figures(envs)["prod"].lead_time == 0  # every digest was first seen in prod itself


def test_deployments_fall_into_their_week_and_frequency_is_per_week_over_twelve(envs):
    dev = envs["dev"]
    dev.release("a", 24 * 7 * 20)  # 20 weeks ago: outside the window
    for i, days in enumerate((15, 15, 2)):
        dev.release(f"b{i}", days * 24)
    m = figures(envs)["dev"]
    assert len(m.weeks) == 12 and m.deployments == 4
    counts = [w.deployments for w in m.weeks]
    assert counts[-1] == 1 and counts[-3] == 2 and sum(counts) == 3
    assert m.per_week == pytest.approx(3 / 12)
    assert m.weeks[-1].start == (NOW - timedelta(weeks=1)).date().isoformat()


def test_releases_without_a_time_are_left_out_and_an_empty_history_has_no_figures(envs):
    envs["dev"].release("a", None)
    m = figures(envs)["dev"]
    assert m.deployments == 0 and m.change_failure_rate is None and m.lead_time is None
    assert m.time_to_restore is None and m.per_week == 0


@pytest.mark.parametrize("seconds, text", [(None, "-"), (42, "42s"), (600, "10m"), (3600, "1h"), (3660 * 3, "3h 3m"),
                                           (86400 * 2 + 3600 * 5, "2d 5h"), (86400, "1d")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text
