"""The metrics page: the figures `dockyard metrics` gives on the same history (the definitions are tested in
tests/insights/test_metrics.py), and the weekly chart's counts, from hand-built histories in the real file store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from dockyard.release.ui import views
from dockyard.release.ui.delivery import metrics_view
from dockyard.release.ui.model import to_json
from tests.support.pulumi_harness import fake_digest
from tests.ui.conftest import dashboards, new_story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(store: FileStore, hours_ago: float, build: str, *, commit_hours_ago: float | None = None,
          rollback: tuple[int, int, str] | None = None) -> int:
    data = {"schema": 1, "at": ago(hours_ago), "source": "registry",
            "images": {s: f"ghcr.io/acme/{s}@{fake_digest(f'{s}-{build}')}" for s in ("web", "worker")}}
    if commit_hours_ago is not None:
        data["changelog"] = {"web": {"oldest": ago(commit_hours_ago)}}
    if rollback:
        data["rollback"] = dict(zip(("of", "to", "cause"), rollback))
    current = store.current()
    return store.append(Release.from_dict(data), expected=current.version if current else None).version


@pytest.fixture()
def history_story(tmp_path, aws_region):
    """The demo's project with hand-built histories: dev with a failed promotion restored, prod with lead times,
    a release outside 30 days, a manual rollback and an abort."""
    story = new_story(tmp_path, start=NOW - timedelta(hours=1))  # the next command runs at NOW
    stores = {env: FileStore(tmp_path / ".dockyard" / "releases" / env) for env in ("dev", "prod")}
    dev, prod = stores["dev"], stores["prod"]
    write(dev, 24 * 40, "a", commit_hours_ago=24 * 41)
    write(dev, 100, "b", commit_hours_ago=101)
    write(dev, 90, "c", commit_hours_ago=95)
    write(dev, 89.5, "b", rollback=(3, 2, "automatic"))
    write(dev, 20, "d", commit_hours_ago=22)
    write(prod, 24 * 45, "a", commit_hours_ago=24 * 41)
    write(prod, 80, "b", commit_hours_ago=101)
    write(prod, 50, "d", commit_hours_ago=60)
    write(prod, 48, "b", rollback=(3, 2, "manual"))
    write(prod, 10, "d", commit_hours_ago=22)
    write(prod, 9.5, "e")
    write(prod, 9.25, "d", rollback=(6, 5, "aborted"))
    return story


@pytest.mark.parametrize("since", [None, "3d"])
def test_the_page_shows_the_figures_dockyard_metrics_gives_on_the_same_history(history_story, since):
    story = history_story
    flags = ["--since", since] if since else []
    command = json.loads(story.ok("metrics", "--json", *flags))  # at NOW (the story's clock moves per command)
    boards = dashboards(story)
    if since:
        boards.since_text = since
    page = boards.current()
    assert story.clock() == NOW
    shown = {m["env"]: m["figures"] for m in to_json(page)["metrics"]}
    assert shown == command["environments"]
    assert page.metrics_since == command["since"]
    # What is compared is not empty: every figure has samples in the 30 days.
    if since is None:
        prod = shown["prod"]
        assert prod["changeFailureRate"] == {"failed": 2, "deployments": 4, "rate": 0.5,
                                             "causes": {"aborted": 1, "manual": 1}}
        assert prod["leadTime"]["samples"] == 2 and prod["leadTime"]["median"] == "16h 30m"  # 21 h and 12 h
        assert prod["timeToRestore"]["samples"] == 2 and shown["dev"]["timeToRestore"]["median"] == "30m"
    # The table says what the command's text says.
    html = views.render("metrics", page, live=False)
    for m in page.metrics:
        assert m.figures.lead_time.text() in html and m.figures.restore.text() in html


def test_dockyard_ui_since_sets_the_period_of_an_export_as_it_does_for_dockyard_metrics(history_story, tmp_path):
    story = history_story
    command = json.loads(story.ok("metrics", "--since", "5d", "--json"))
    story.clock.tick(-1)  # the export runs at the same instant
    story.ok("ui", "--export", str(tmp_path / "site"), "--since", "5d")
    state = json.loads((tmp_path / "site" / "api" / "state.json").read_text())
    assert {m["env"]: m["figures"] for m in state["metrics"]} == command["environments"]
    assert "dockyard metrics --since 5d" in (tmp_path / "site" / "metrics.html").read_text()
    code, _, err = story("ui", "--export", str(tmp_path / "other"), "--since", "lately")
    assert code == 2 and "--since 'lately'" in err and "Traceback" not in err
    assert not (tmp_path / "other").exists()


def test_promotions_fall_into_their_week_and_the_failed_ones_are_counted_apart(tmp_path):
    dev = FileStore(tmp_path / "dev")
    write(dev, 24 * 7 * 20, "a")  # 20 weeks ago: outside the chart and the period
    for i, days in enumerate((15, 15, 2)):
        write(dev, days * 24, f"b{i}")
    write(dev, 24 * 15 - 1, "b0", rollback=(3, 2, "automatic"))  # the second of the 15-day-old ones failed
    m = metrics_view("dev", dev.history(), now=NOW, since=timedelta(days=30))
    assert len(m.weeks) == 12
    assert [(w.deployments, w.failures) for w in m.weeks][-3:] == [(2, 1), (0, 0), (1, 0)]
    assert sum(w.deployments for w in m.weeks) == 3 and sum(w.failures for w in m.weeks) == 1
    assert m.weeks[-1].start == (NOW - timedelta(weeks=1)).date().isoformat()
    assert m.weeks[0].start == (NOW - timedelta(weeks=12)).date().isoformat()
    assert (m.figures.deployments, m.figures.failed, m.figures.rollbacks) == (3, 1, 1)
    assert round(m.figures.per_day * 7, 2) == 0.7  # 3 in 30 days
