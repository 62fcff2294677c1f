"""The changelog of a promotion, from a real git repository (and a shallow clone of it) and a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.manifest import Release, Verification
from dockyard.release.insights.changelog import History, compute, image_revision, service_changes
from dockyard.release.registries.oci import RegistryClients
from dockyard.release.project import Project
from tests.insights.gitrepo import shop
from tests.support.oci_registry import start_registry

WEB = ["images/web"]
WORKER = ["images/worker"]


@pytest.fixture()
def repo(tmp_path):
    return shop(tmp_path / "shop")


def test_only_commits_touching_the_service_arrive_newest_first(repo):
    r, c = repo
    web = service_changes(History(r.path), "web", c["start"], c["web2"], WEB)
    assert [x.sha for x in web.arriving] == [c["web2"], c["web1"]]  # not the readme, not worker's
    assert web.arriving_total == 2 and web.leaving_total == 0 and web.note is None
    assert web.arriving[1].subject == "web: new greeting" and web.arriving[1].author == "Grace"
    assert web.arriving[1].date.startswith("2026-01-02") and web.oldest.startswith("2026-01-02")
    worker = service_changes(History(r.path), "worker", c["start"], c["web2"], WORKER)
    assert [x.subject for x in worker.arriving] == ["worker: faster ticks"]
    lines = web.lines()
    assert lines[0].startswith(f"web: 2 commit(s) to its build inputs ({c['start'][:7]}..{c['web2'][:7]})")
    assert lines[1] == f"  {c['web2'][:7]} web: pin the base image (Ada, 2026-01-05)"


def test_same_commit_brings_nothing_and_a_cap_counts_the_rest(repo):
    r, c = repo
    none = service_changes(History(r.path), "worker", c["worker1"], c["web2"], WORKER)
    assert none.arriving_total == 0 and "no commit to its build inputs arrives" in none.lines()[0]
    capped = service_changes(History(r.path), "web", c["start"], c["web2"], WEB, limit=1)
    assert len(capped.arriving) == 1 and capped.arriving_total == 2
    assert capped.lines()[-1] == "  ... and 1 more"


def test_a_rollback_shows_the_same_commits_leaving(repo):
    r, c = repo
    back = service_changes(History(r.path), "web", c["web2"], c["start"], WEB)
    assert back.arriving_total == 0 and [x.sha for x in back.leaving] == [c["web2"], c["web1"]]
    lines = back.lines("leave")
    assert "these leave:" in lines[0] and c["web1"][:7] in lines[2]


def test_a_shallow_clone_says_so_in_one_line(repo, tmp_path):
    r, c = repo
    clone = tmp_path / "clone"
    r.git("clone", "-q", "--depth", "1", f"file://{r.path}", str(clone))
    web = service_changes(History(clone), "web", c["start"], c["web2"], WEB)
    assert web.arriving_total is None and web.arriving == ()
    assert web.lines() == ["web: history not available: shallow clone (check out with fetch-depth: 0)"]
    # A deeper clone that holds both commits answers as the full one does.
    deeper = tmp_path / "deeper"
    r.git("clone", "-q", "--depth", "3", f"file://{r.path}", str(deeper))
    assert service_changes(History(deeper), "web", c["docs"], c["web2"], WEB).arriving_total == 1


def test_unknown_commits_and_missing_history_are_notes_not_errors(repo, tmp_path):
    r, c = repo
    stranger = "0123456789abcdef0123456789abcdef01234567"
    assert "is not in this repository" in service_changes(History(r.path), "web", stranger, c["web2"], WEB).note
    assert "no org.opencontainers.image.revision" in service_changes(History(r.path), "web", c["start"], "unknown",
                                                                      WEB).note
    (tmp_path / "plain").mkdir()
    assert "is not a git checkout" in service_changes(History(tmp_path / "plain"), "web", c["start"], c["web2"],
                                                      WEB).note
    first = service_changes(History(r.path), "web", None, c["web2"], WEB)
    assert first.note.startswith("first release here") and first.oldest.startswith("2026-01-05")
    dirty = service_changes(History(r.path), "web", c["start"], c["web2"] + "-dirty", WEB)
    assert dirty.arriving_total == 2 and "uncommitted" in dirty.note


def _project(path: Path) -> Project:
    (path / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (path / "Pulumi.registry.yaml").write_text(
        "config:\n  dockyard:role: registry\n  dockyard:registry: external\n"
        "  dockyard:services: {web: {}, worker: {}}\n"
        "  dockyard:prebuilt: {web: 'r.example/web@sha256:" + "a" * 64 + "', worker: 'r.example/worker@sha256:"
        + "b" * 64 + "'}\n")
    return Project(path)


def test_revisions_are_read_by_digest_from_a_real_registry_and_drive_the_changelog(repo, tmp_path_factory):
    r, c = repo
    registry = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        label = "org.opencontainers.image.revision"
        old_web = registry.put_image("shop/web", "old", labels={label: c["start"]})
        new_web = registry.put_image("shop/web", "new", labels={label: c["web2"]})
        worker = registry.put_image("shop/worker", "w", labels={label: c["start"]})
        bare = registry.put_image("shop/bare", "no label")
        clients = RegistryClients()
        assert image_revision(clients, f"{registry.host}/shop/web@{new_web}", None) == (c["web2"], None)
        assert image_revision(clients, f"{registry.host}/shop/bare@{bare}", None) == ("unknown", None)
        recorded = Verification(signer="key x", commit=c["web1"])
        assert image_revision(clients, f"{registry.host}/shop/web@{new_web}", recorded) == (c["web1"], None)

        class Ctx:
            project = _project(r.path)
            registries = clients

        old = Release.from_dict({"schema": 1, "images": {"web": f"{registry.host}/shop/web@{old_web}",
                                                         "worker": f"{registry.host}/shop/worker@{worker}"}})
        log = compute(Ctx, old, {"web": f"{registry.host}/shop/web@{new_web}",
                                 "worker": f"{registry.host}/shop/worker@{worker}"})
        assert [s.service for s in log.services] == ["web"]  # worker's digest did not change: no entry
        assert [x.sha for x in log.services[0].arriving] == [c["web2"], c["web1"]]
        record = log.record()["web"]
        assert (record.old, record.new, record.commits, record.leaving) == (c["start"], c["web2"], 2, 0)
    finally:
        registry.stop()


def test_an_unreachable_registry_is_a_note(repo):
    r, c = repo

    class Ctx:
        project = _project(r.path)
        registries = RegistryClients()

    log = compute(Ctx, None, {"web": "127.0.0.1:9/shop/web@sha256:" + "c" * 64})
    assert log.services[0].arriving_total is None
    assert "could not read its image's revision (registry 127.0.0.1:9 is unreachable" in log.lines()[0]
