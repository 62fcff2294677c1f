"""The dashboard's data: the demo's story told through the command, read back as the page shows it."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from dockyard.release.ui import gather, views
from dockyard.release.ui.changelogs import Changelogs
from dockyard.release.ui.engine_reads import EngineReads, EngineSnapshot
from dockyard.release.ui.model import short_digest, to_json
from tests.release.conftest import SERVICES, write_stack
from tests.insights.gitrepo import shop
from tests.release.test_insights_commands import LabelledRegistries, configure
from tests.ui.conftest import BRANCH, BRANCH_URL, dashboards, make_project, tell_the_demo_story


def by_name(items, attr="name"):
    return {getattr(i, attr): i for i in items}


def test_after_the_demo_story_dev_and_prod_show_their_releases_holds_and_rollbacks(story):
    builds = tell_the_demo_story(story)
    d = dashboards(story).current()
    assert [e.name for e in d.environments] == ["dev", "prod"]
    envs = by_name(d.environments)
    dev, prod = envs["dev"], envs["prod"]
    assert (dev.version, dev.state) == (4, "verified")
    assert {s.service: s.image for s in dev.services} == builds["r2"]  # the automatic rollback restored r2
    assert dev.rollback.cause == "automatic" and (dev.rollback.of, dev.rollback.to) == (3, 2)
    assert dev.held and "release 3 failed verification" in dev.held.reason
    assert (prod.version, prod.known_good) == (3, 3)
    assert {s.service: s.image for s in prod.services} == builds["r1"]
    assert {s.service: s.short for s in prod.services} == {s: short_digest(r) for s, r in builds["r1"].items()}
    assert prod.held.reason == "release 2 misbehaves" and prod.held.by == "alice"
    assert prod.rollback.cause == "manual"
    assert d.registry is not None and {s.service: s.image for s in d.registry.services} == builds["r3"]


def test_between_neighbours_the_page_shows_what_a_promote_would_change_and_the_command(told):
    d = dashboards(told).current()
    into_prod = d.promotion_into("prod")
    assert into_prod.source == "dev"
    # prod runs r1 after its rollback, dev runs r2: web differs, worker does not.
    envs = by_name(d.environments)
    dev_web = next(s.image for s in envs["dev"].services if s.service == "web")
    assert [(c.service, c.new) for c in into_prod.changes] == [("web", dev_web)]
    assert into_prod.command == "dockyard promote prod --from dev --release-hold"  # prod is held
    assert d.promotion_into("dev").source == "registry"


def test_the_timeline_has_every_release_with_its_kind_outcome_and_cause(told):
    d = dashboards(told).current()
    timelines = by_name(d.timelines, "env")
    dev = [(e.version, e.kind, e.outcome) for e in timelines["dev"].events]
    assert dev == [(4, "automatic rollback", None), (3, "promote", "verification failed"), (2, "promote", None),
                   (1, "promote", None)]
    automatic = timelines["dev"].events[0]
    assert automatic.cause and "the stack deployed web as" in automatic.cause
    assert automatic.record.rollback.to == 2 and automatic.record.labels
    prod = [(e.version, e.kind, e.outcome) for e in timelines["prod"].events]
    assert prod == [(3, "manual rollback", None), (2, "promote", "rolled back"), (1, "promote", None)]


def test_a_branch_preview_shows_its_base_own_images_url_and_when_gc_would_remove_it(told):
    d = dashboards(told).current()
    (branch,) = d.branches
    assert branch.branch == BRANCH and branch.base == "dev" and branch.url == BRANCH_URL
    assert [c.service for c in branch.changed] == ["web"]
    last = told.engine.last_update[branch.stack]
    assert branch.last_change == last.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert branch.removal == (last + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_metrics_count_the_story(told):
    m = {name: view.figures for name, view in by_name(dashboards(told).current().metrics, "env").items()}
    assert (m["dev"].deployments, m["dev"].failed, m["dev"].causes) == (3, 1, {"automatic": 1})
    assert (m["prod"].deployments, m["prod"].failed, m["prod"].rollbacks) == (2, 1, 1)
    assert m["prod"].restore.median == timedelta(hours=1)  # rolled back one command (an hour of the story) later


def test_the_version_moves_with_a_promote_and_only_then_is_the_dashboard_rebuilt(told):
    boards = dashboards(told)
    first = boards.current()
    assert boards.current() is first and boards.version() == first.version
    told.ok("promote", "prod", "--from", "dev", "--release-hold", "--no-deploy", "--yes")
    assert boards.version() != first.version
    again = boards.current()
    assert again is not first and by_name(again.environments)["prod"].version == 4
    assert by_name(again.environments)["prod"].held is None


def test_the_pipeline_order_comes_from_where_releases_came_from(tmp_path, aws_region):
    make_project(tmp_path)
    for env in ("alpha", "beta"):
        write_stack(tmp_path, env, {"dockyard:role": "app", "dockyard:imageSource": "file",
                                    "dockyard:services": SERVICES, "dockyard:trust": "none"})
    image = {s: ImageRef.parse_pinned(f"ghcr.io/acme/{s}@sha256:{'a' * 64}") for s in SERVICES}
    # prod takes from beta, beta from alpha, alpha from dev: no name says so.
    for env, source in (("alpha", "dev:v1"), ("beta", "alpha:v1"), ("prod", "beta:v1"), ("dev", "registry")):
        FileStore(tmp_path / ".dockyard" / "releases" / env).append(Release(images=image, source=source),
                                                                    expected=None)
    from tests.ui.conftest import new_story

    story = new_story(tmp_path)
    reads = {n: gather._read(story.context(), n, EngineSnapshot()) for n in ("alpha", "beta", "dev", "prod")}
    order, upstream = gather.pipeline(reads)
    assert order == ["dev", "alpha", "beta", "prod"]
    assert upstream == {"dev": "registry", "alpha": "dev", "beta": "alpha", "prod": "beta"}


def test_without_history_conventional_names_set_the_order(story):
    for env in ("staging", "qa"):
        write_stack(story.project.dir, env, {"dockyard:role": "app", "dockyard:imageSource": "file",
                                             "dockyard:services": SERVICES, "dockyard:trust": "none"})
    d = dashboards(story).current()
    assert [e.name for e in d.environments] == ["dev", "qa", "staging", "prod"]
    assert [(p.source, p.into) for p in d.promotions] == [("registry", "dev"), ("dev", "qa"), ("qa", "staging"),
                                                           ("staging", "prod")]
    assert all(e.state == "no release" for e in d.environments)


def test_a_stack_following_environment_shows_what_the_engine_says_it_deployed(story):
    write_stack(story.project.dir, "preview", {"dockyard:role": "app", "dockyard:imageSource": "stack",
                                               "dockyard:services": SERVICES})
    story.engine.deployed["preview"] = {"images": {"web": f"ghcr.io/acme/web@sha256:{'b' * 64}"}}
    reads = EngineReads(story.context())
    before = gather.build(story.context(), reads.snapshot, version="x", idle_for=timedelta(days=1), idle_text="1d")
    assert by_name(before.environments)["preview"].services == ()  # the engine has not been asked yet
    assert before.registry.reading
    reads.refresh()
    after = gather.build(story.context(), reads.snapshot, version="y", idle_for=timedelta(days=1), idle_text="1d")
    preview = by_name(after.environments)["preview"]
    assert preview.state == "follows the registry" and [s.short for s in preview.services] == ["sha256:bbbbbbbbbbbb"]
    assert after.promotion_into("preview") is None  # nothing to promote: it deploys the registry's output


def test_a_stack_the_engine_cannot_read_is_one_error_and_the_rest_still_shows(told):
    class Broken:
        def outputs(self, stack):
            raise RuntimeError("backend unreachable")

        def stacks(self):
            raise RuntimeError("backend unreachable")

    ctx = told.context()
    ctx.deployer_factory = lambda: Broken()
    reads = EngineReads(ctx)
    reads.refresh()
    d = gather.build(ctx, reads.snapshot, version="v", idle_for=timedelta(days=7), idle_text="7d")
    assert "backend unreachable" in d.registry.error
    assert [e.version for e in d.environments] == [4, 3]
    assert d.branches[0].url is None and "backend unreachable" in d.branches[0].error


def test_a_long_history_shows_its_newest_releases_and_says_how_many_there_are(told):
    from dockyard.release.ui import views

    history = told.context().store(told.project.app_environment("dev")).history()
    timeline = gather.timeline_view("dev", history, limit=2)
    assert [e.version for e in timeline.events] == [4, 3] and timeline.total == 4
    d = dashboards(told).current()
    page = views.render("history", d, live=True)
    assert 'id="dev-v1"' in page  # the default limit keeps a short history whole
    long = gather.build(told.context(), EngineSnapshot(), version="v", idle_for=timedelta(days=7), idle_text="7d",
                        limit=2)
    page = views.render("history", long, live=False)
    assert 'id="dev-v1"' not in page and "The newest 2; <code>dockyard history dev</code> lists all 4." in page


def freeze(story, env: str, kind: str, name: str, start_hours: float, hours: int) -> datetime:
    """A one-off window of `env`, `start_hours` from the story's now (to the minute), lasting `hours`; its end."""
    start = (story.clock() + timedelta(hours=start_hours)).replace(second=0)
    configure(story, env, windows={kind: [{"name": name, "start": start.strftime("%Y-%m-%dT%H:%M"),
                                           "duration": f"{hours}h"}]})
    return start + timedelta(hours=hours)


def test_each_environment_shows_its_freeze_window_as_status_does(told):
    opens = freeze(told, "prod", "deny", "release-freeze", -1, 3)  # closed (status runs an hour on); opens in 2 h
    closes = freeze(told, "dev", "allow", "office-hours", 0, 4)  # open; closes in 3 h
    status = json.loads(told.ok("status", "--json"))["environments"]
    d = dashboards(told).current()
    envs = by_name(d.environments)
    assert {name: to_json(envs[name].window) for name in ("dev", "prod")} == \
           {name: status[name]["window"] for name in ("dev", "prod")}
    prod, dev = envs["prod"].window, envs["dev"].window
    assert (prod.open, prod.window, prod.until) == (False, "release-freeze", opens)
    assert (dev.open, dev.window, dev.until) == (True, None, closes)
    page = views.render("index", d, live=False)
    assert f"Window closed by release-freeze; opens {prod.until:%Y-%m-%d %H:%M} UTC" in page
    assert f"Window open until {dev.until:%Y-%m-%d %H:%M} UTC" in page and page.count('class="badge frozen"') == 1


def test_without_windows_no_window_is_shown(told):
    d = dashboards(told).current()
    assert all(e.window is None for e in d.environments)
    assert 'class="window' not in views.render("index", d, live=False)


def test_a_promotion_into_a_closed_environment_says_when_it_opens(told):
    told.ok("promote", "prod", "--from", "dev", "--release-hold", "--no-deploy", "--yes")
    told.ok("promote", "dev", "--from", "registry", "--release-hold", "--no-deploy", "--yes")
    freeze(told, "prod", "deny", "release-freeze", -1, 2)
    into_prod = dashboards(told).current().promotion_into("prod")
    assert [c.service for c in into_prod.changes] == ["web"]
    assert into_prod.note.startswith("prod is closed by release-freeze; opens ")
    assert "--override-window --reason TEXT" in into_prod.note


def test_the_page_moves_when_a_window_opens_though_no_store_changed(told):
    freeze(told, "prod", "deny", "release-freeze", -1, 2)  # opens in an hour
    boards = dashboards(told)
    closed = boards.current()
    assert not by_name(closed.environments)["prod"].window.open
    told.clock.tick(0.5)
    assert boards.version() == closed.version and boards.current() is closed
    told.clock.tick(0.5)
    assert boards.version() != closed.version
    opened = boards.current()
    assert by_name(opened.environments)["prod"].window.open
    assert boards.version() == opened.version == boards.version()  # moved once, then still


def labelled(story, commits) -> None:
    """The story's images carry the commit each build came from (r1 the first, r2 and r3 web's newest), from
    before the story is told: an image's labels are part of it, and releases record them when written."""
    first = story.images("r1")
    builds = {"r1": first, **{b: {**first, "web": story.image("web", b)} for b in ("r2", "r3")},
              "banner": {"web": story.image("web", "banner")}}
    of = {"r1": commits["start"], "r2": commits["web2"], "r3": commits["web2"], "banner": commits["web1"]}
    story.registries = LabelledRegistries({ref: of[build] for build, images in builds.items()
                                           for ref in images.values()})


def git_history(story) -> dict[str, str]:
    """The project directory becomes a git checkout with commits to web, worker and neither."""
    _, commits = shop(story.project.dir / "src")
    shutil.move(str(story.project.dir / "src" / ".git"), str(story.project.dir / ".git"))
    return commits


def test_between_neighbours_the_page_lists_the_commits_promote_would_show(story):
    commits = git_history(story)
    labelled(story, commits)
    builds = tell_the_demo_story(story)
    into_prod = dashboards(story).current().promotion_into("prod")
    (web,) = into_prod.changelog.services
    assert [c.subject for c in web.arriving] == ["web: pin the base image", "web: new greeting"]
    assert web.lines()[0] == (f"web: 2 commit(s) to its build inputs ({commits['start'][:7]}..{commits['web2'][:7]}); "
                              "these arrive:")
    page = views.render("index", dashboards(story).current(), live=False)
    assert f"{commits['web1'][:7]} web: new greeting (Grace, 2026-01-02)" in page
    promoted = json.loads(story.ok("promote", "prod", "--from", "dev", "--release-hold", "--no-deploy", "--yes",
                                   "--json"))
    assert to_json(into_prod.changelog) == promoted["changelog"]
    # registry -> dev: web's image comes from the commit dev runs already; worker does not change.
    into_dev = dashboards(story).current().promotion_into("dev")
    assert into_dev.changelog.lines() == [f"web: no commit to its build inputs arrives "
                                          f"({commits['web2'][:7]}..{commits['web2'][:7]})"]


def test_without_history_a_promotion_says_so_in_one_line_and_asks_again_next_time(story):
    _, commits = shop(story.project.dir / "src")  # a repository beside the project: not its checkout
    labelled(story, commits)
    tell_the_demo_story(story)
    kept = Changelogs()

    def into_prod():
        d = gather.build(story.context(), EngineSnapshot(), version="v", idle_for=timedelta(days=7), idle_text="7d",
                         changelogs=kept)
        return d.promotion_into("prod").changelog, views.render("index", d, live=False)

    log, page = into_prod()
    assert log.lines() == [f"web: history not available: {story.project.dir} is not a git checkout"]
    assert log.lines()[0] in page
    shutil.move(str(story.project.dir / "src" / ".git"), str(story.project.dir / ".git"))
    log, page = into_prod()  # not kept while unknown: asked again, now with history
    assert log.lines()[0].startswith("web: 2 commit(s) to its build inputs")
    assert into_prod()[0] is log  # known: kept while what runs and what comes stay the same
