"""The commands with the insights: changelogs from a real git history, freeze windows, webhooks on
loopback, --auto behind the soak gate, and `dockyard metrics`; against moto and the file store."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import yaml

from dockyard.release import cli
from dockyard.release.stores.base import KNOWN_GOOD
from tests.insights.gitrepo import shop
from tests.insights.receivers import Receiver, down_url
from tests.release.conftest import FakeOciRegistries, images, ref
from tests.release.test_commands import seed

LABEL = "org.opencontainers.image.revision"


class LabelledRegistries(FakeOciRegistries):
    """The release tests' registry, whose images also carry a revision label (the real label read is tested
    against a real registry in tests/insights/test_changelog.py)."""

    def __init__(self, revisions: dict[str, str]) -> None:
        super().__init__()
        self.revisions = revisions  # image reference -> commit

    def for_ref(self, image_ref: Any) -> Any:
        client = super().for_ref(image_ref)
        revisions = self.revisions

        def image_config(repository: str, digest: str) -> dict:
            commit = revisions.get(f"{image_ref.registry}/{repository}@{digest}")
            return {"config": {"User": "10001", "Labels": {LABEL: commit} if commit else {}}}

        client.image_config = image_config
        return client


def configure(d, env: str, **values: Any) -> None:
    path = d.project.config_file(env)
    data = yaml.safe_load(path.read_text())
    data["config"].update({f"dockyard:{k}": v for k, v in values.items()})
    path.write_text(yaml.safe_dump(data))


def publish(d, web: str, worker: str) -> None:
    """The registry's release: web from build `web`, worker from build `worker`."""
    import json

    d.engine.registry_images = {"web": ref("web", web), "worker": ref("worker", worker)}
    if d.project.environment("registry").store_kind == "ssm":
        d.ssm().put_parameter(Name="/dockyard/registry/release", Type="String", Overwrite=True,
                              Value=json.dumps({"schema": 1, "images": d.engine.registry_images}))


def with_history(d):
    """The project directory is a git checkout with commits to web, worker and neither; images carry
    the commit they were built from."""
    _, c = shop(d.project.dir / "src")
    shutil.move(str(d.project.dir / "src" / ".git"), str(d.project.dir / ".git"))
    d.registries = LabelledRegistries({ref("web", "seed"): c["start"], ref("worker", "seed"): c["start"],
                                       ref("web", "v2"): c["web2"], ref("worker", "v2"): c["worker1"]})
    return c


def test_promote_shows_and_records_the_commits_each_changed_service_brings(dockyard):
    c = with_history(dockyard)
    seed(dockyard)
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes")[0] == 0
    publish(dockyard, web="v2", worker="seed")
    assert dockyard("promote", "dev", "--from", "registry", "--yes")[0] == 0
    # Asked without a terminal: refused, but the changelog was shown before the question.
    assert dockyard("promote", "prod", "--from", "dev", "--unverified")[0] == 2
    assert f"  web: 2 commit(s) to its build inputs ({c['start'][:7]}..{c['web2'][:7]}); these arrive:" in dockyard.logs
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 0, err
    web = out["changelog"]["web"]
    assert [x["sha"] for x in web["commits"]] == [c["web2"], c["web1"]]  # newest first; no readme, no worker
    assert web["count"] == 2 and web["from"] == c["start"] and web["to"] == c["web2"]
    assert "worker" not in out["changelog"]  # its digest did not change
    _, history, _ = dockyard("history", "prod", "--json")
    assert history["releases"][0]["changelog"]["web"]["commits"] == 2
    assert history["releases"][0]["changelog"]["web"]["oldest"].startswith("2026-01-02")
    _, table, _ = dockyard("history", "prod")
    assert "web +2" in table
    code, text, _ = dockyard("rollback", "prod", "--yes", "--to", "1", "--no-deploy")
    assert code == 0 and f"web: 2 commit(s) to its build inputs ({c['web2'][:7]}..{c['start'][:7]}); these leave:" \
        in text
    assert f"{c['web2'][:7]} web: pin the base image (Ada, 2026-01-05)" in text
    _, history, _ = dockyard("history", "prod", "--json")
    assert history["releases"][0]["changelog"]["web"]["leaving"] == 2


def test_shallow_history_is_said_in_one_line_and_promotes_anyway(dockyard):
    src = dockyard.project.dir / "full"
    _, c = shop(src)
    clone = dockyard.project.dir / "clone"
    import subprocess

    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{src}", str(clone)], check=True)
    shutil.move(str(clone / ".git"), str(dockyard.project.dir / ".git"))
    dockyard.registries = LabelledRegistries({ref("web", "seed"): c["start"], ref("web", "v2"): c["web2"],
                                              ref("worker", "seed"): c["start"]})
    seed(dockyard)
    publish(dockyard, web="v2", worker="seed")
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0 and out["version"] == 2
    assert out["changelog"]["web"]["note"] == "history not available: shallow clone (check out with fetch-depth: 0)"


def window(minutes_from_now: int, hours: int) -> dict:
    start = datetime.now(timezone.utc) + timedelta(minutes=minutes_from_now)
    return {"deny": [{"name": "release-freeze", "start": start.strftime("%Y-%m-%dT%H:%M"),
                      "duration": f"{hours}h"}]}


def test_a_closed_window_refuses_with_exit_3_naming_it_and_when_it_opens(dockyard):
    seed(dockyard)
    configure(dockyard, "prod", windows=window(-60, 2))
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 3 and out["error"]["code"] == "conflict"
    assert "prod is closed by release-freeze; opens " in out["error"]["message"]
    assert "--override-window --reason" in out["error"]["hint"]
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["window"]["open"] is False
    assert status["environments"]["prod"]["window"]["window"] == "release-freeze"
    _, table, _ = dockyard("status", "prod")
    assert "WINDOW" in table and "closed by release-freeze" in table
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--override-window")[0] == 2  # no --reason


def test_an_overridden_window_promotes_and_the_release_records_it(dockyard):
    seed(dockyard)
    configure(dockyard, "prod", windows=window(-60, 2))
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--override-window", "--reason",
                            "security fix", "--json")
    assert code == 0 and out["override"] == {"window": "release-freeze", "reason": "security fix"}
    _, history, _ = dockyard("history", "prod", "--json")
    assert history["releases"][0]["override"] == {"window": "release-freeze", "reason": "security fix"}


def test_an_open_window_promotes_and_rollback_is_never_blocked(dockyard):
    seed(dockyard)
    configure(dockyard, "prod", windows=window(60, 2))  # the freeze starts in an hour
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 0 and out["override"] is None
    publish(dockyard, web="v2", worker="v2")
    dockyard("promote", "dev", "--from", "registry", "--yes")
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes")[0] == 0
    configure(dockyard, "prod", windows=window(-60, 2))  # now closed
    assert dockyard("rollback", "prod", "--to", "1", "--yes")[0] == 0


def test_webhooks_hear_promote_and_automatic_rollback_and_a_down_one_does_not_delay_it(dockyard):
    # The slow receiver answers long after the webhook timeout: a command that waited for it would
    # start the rollback's deploy only after `timeout` seconds; one that does not, at once.
    live, slow = Receiver(), Receiver(delay=30.0)
    try:
        hooks = {"webhooks": [{"url": down_url()}, {"url": slow.url, "format": "slack"}, {"url": live.url}],
                 "timeout": 20, "retries": 1}
        configure(dockyard, "prod", notify=hooks)
        seed(dockyard)
        assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes")[0] == 0
        assert [e["event"] for e in live.received] == ["promote"]
        assert live.received[0]["version"] == 1 and live.received[0]["from"] == "dev:v1"
        publish(dockyard, web="v2", worker="v2")
        dockyard("promote", "dev", "--from", "registry", "--yes")
        ups: list[float] = []
        dockyard.engine.before_up = lambda stack: ups.append(time.monotonic())
        dockyard.engine.sabotage["prod"] = images("seed")  # what runs after the update: the old images
        started = time.monotonic()
        code, out, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
        finished = time.monotonic()
        assert code == 1 and "rolled back automatically" in out["error"]["message"]
        # The rollback's deploy did not wait for the slow receiver (20 s timeout), and the command's end
        # waits a bounded time for it (MAX_WAIT), not the timeout times the retries.
        assert len(ups) == 2 and ups[1] - ups[0] < 10
        assert finished - started < 30
        events = [e["event"] for e in live.received]
        assert events[1:] == ["verification-failed", "hold", "automatic-rollback"]
        assert live.received[-1]["verified"] is True and live.received[-1]["restored"] == 1
        reported = [line for line in dockyard.logs if line.startswith("warning: notify 127.0.0.1:")]
        assert reported and all("not delivered" in line for line in reported)  # reported; the exit code is the promote's
    finally:
        live.stop()
        slow.stop()


def at_time(d, monkeypatch, moment: datetime) -> None:
    """Run the following commands as if it were `moment`."""
    made = cli.make_context

    def context(project_dir):
        ctx = made(project_dir)
        ctx.now = lambda: moment
        return ctx

    monkeypatch.setattr(cli, "make_context", context)


def test_auto_waits_for_the_soak_then_promotes_and_never_into_a_held_environment(dockyard, monkeypatch):
    configure(dockyard, "prod", soak="24h")
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    at_time(dockyard, monkeypatch, t0)
    seed(dockyard)
    assert dockyard("deploy", "dev")[0] == 0  # dev's release 1 verified: known-good
    at_time(dockyard, monkeypatch, t0 + timedelta(hours=5))
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert code == 0 and out["promoted"] is False and out["waiting"] == "soaking"
    assert out["eligibleAt"] == "2026-03-03T09:00:00Z"
    assert dockyard("history", "prod", "--json")[1]["releases"] == []
    at_time(dockyard, monkeypatch, t0 + timedelta(hours=25))
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert code == 0 and out["promoted"] is True and out["version"] == 1 and out["verified"] is True
    assert "auto: dev:v1 soaked 1d" in dockyard("history", "prod", "--json")[1]["releases"][0]["reason"]
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert out["waiting"] == "same"
    # dev moves on; prod's automatic rollback of it holds prod, and --auto leaves it alone.
    publish(dockyard, web="v2", worker="v2")
    assert dockyard("promote", "dev", "--from", "registry", "--yes")[0] == 0
    at_time(dockyard, monkeypatch, t0 + timedelta(days=3))
    dockyard.engine.sabotage["prod"] = images("seed")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert code == 1 and "rolled back automatically" in out["error"]["message"]
    dockyard.engine.sabotage.clear()
    at_time(dockyard, monkeypatch, t0 + timedelta(days=5))
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert code == 0 and out["promoted"] is False and out["waiting"] == "held"
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["version"] == 3  # nothing new written


def test_auto_refuses_what_it_cannot_judge(dockyard):
    seed(dockyard)
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--auto", "--json")
    assert code == 2 and "prod has no dockyard:soak" in out["error"]["message"]
    configure(dockyard, "prod", soak="1h")
    assert dockyard("promote", "prod", "--from", "registry", "--auto")[0] == 2
    assert dockyard("promote", "prod", "--from", "dev", "--auto", "--override-window", "--reason", "x")[0] == 2


def test_metrics_over_promotions_a_failure_and_its_rollback(dockyard, monkeypatch):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    at_time(dockyard, monkeypatch, t0)
    seed(dockyard)
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes")[0] == 0  # prod v1 at t0
    publish(dockyard, web="v2", worker="v2")
    dockyard("promote", "dev", "--from", "registry", "--yes")
    at_time(dockyard, monkeypatch, t0 + timedelta(days=2))
    dockyard.engine.sabotage["prod"] = images("seed")
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes")[0] == 1  # prod v2 fails, v3 restores v1
    dockyard.engine.sabotage.clear()
    at_time(dockyard, monkeypatch, t0 + timedelta(days=4))
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--release-hold")[0] == 0  # prod v4
    at_time(dockyard, monkeypatch, t0 + timedelta(days=7))
    code, out, _ = dockyard("metrics", "prod", "--since", "14d", "--json")
    assert code == 0
    prod = out["environments"]["prod"]
    assert prod["deploymentFrequency"]["deployments"] == 3 and prod["deploymentFrequency"]["rollbacks"] == 1
    assert prod["changeFailureRate"] == {"failed": 1, "deployments": 3, "rate": 0.3333,
                                         "causes": {"automatic": 1}}
    assert prod["timeToRestore"]["samples"] == 1 and prod["timeToRestore"]["medianSeconds"] == 0
    code, text, _ = dockyard("metrics", "prod", "dev", "--since", "14d")
    assert "change failure rate    33% (1 of 3: 1 automatic)" in text and "dev (" in text
    assert dockyard("metrics", "--since", "soon")[0] == 2
    assert dockyard("metrics", "preview")[0] == 2  # follows the registry stack: no history
    known = dockyard("status", "prod", "--json")[1]["environments"]["prod"]["knownGood"]
    assert known == 4 and KNOWN_GOOD


def test_the_pull_request_comment_lists_the_commits_the_branch_brings(dockyard):
    c = with_history(dockyard)
    seed(dockyard)
    code, _, err = dockyard("branch", "up", "fix-x", "--image", f"web={ref('web', 'v2')}", "--json")
    assert code == 0, err
    code, out, _ = dockyard("branch", "preview", "fix-x", "--json")
    assert code == 0 and [x["sha"] for x in out["changelog"]["web"]["commits"]] == [c["web2"], c["web1"]]
    comment = out["comment"]
    assert "#### Commits this preview runs that its base does not" in comment
    assert f"- `{c['web1'][:7]}` web: new greeting (Grace, 2026-01-02)" in comment
    assert "worker" not in out["changelog"]
