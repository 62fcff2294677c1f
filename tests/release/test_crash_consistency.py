"""A command killed at any step, run again, converges: deployed, tagged, labelled, verified, no release lost
or written twice, held where a rollback holds. The kill is simulated in-process here (the fault hook
raises instead of SIGKILL, so the release store and the fake engine keep exactly what a kill leaves);
tests/e2e/test_crash_consistency.py kills the real command, and its engine, with SIGKILL."""

from __future__ import annotations

import pytest

from dockyard.release.recovery import faults
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD
from tests.release.conftest import images, publish_registry


class Killed(BaseException):
    """What the process would have died of at that step."""


@pytest.fixture()
def kill_switch(monkeypatch):
    def kill():
        raise Killed()

    monkeypatch.setattr(faults, "kill", kill)

    def arm(step: str | None) -> None:
        if step is None:
            monkeypatch.delenv(faults.ENV, raising=False)
        else:
            monkeypatch.setenv(faults.ENV, step)

    return arm


def prod_on_1_dev_on_2(d) -> None:
    assert d("promote", "dev", "--from", "registry", "--yes")[0] == 0
    assert d("promote", "prod", "--from", "dev", "--yes")[0] == 0
    publish_registry(d, "v2")
    assert d("promote", "dev", "--from", "registry", "--yes")[0] == 0
    d.engine.before_up = lambda stack: faults.at("during-up")


def killed(d, arm, step: str, *args: str) -> None:
    arm(step)
    with pytest.raises(Killed):
        d(*args)
    arm(None)


def state(d, env: str) -> dict:
    _, history, _ = d("history", env, "--json")
    _, status, _ = d("status", env, "--json")
    return {"versions": [r["version"] for r in history["releases"]],
            "labels": {r["version"]: sorted(r["labels"]) for r in history["releases"] if r["labels"]},
            "held": status["environments"][env]["held"] is not None,
            "runs": d.engine.deployed.get(env, {}).get("images")}


PROMOTE_STEPS = ["after-release-written", "after-tag", "during-up", "after-up-before-label", "during-verify"]


@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_promote_killed_at_a_step_converges_when_run_again(dockyard, kill_switch, step):
    prod_on_1_dev_on_2(dockyard)
    killed(dockyard, kill_switch, step, "promote", "prod", "--from", "dev", "--yes")
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 0, err
    assert out["version"] == 2 and out["deployed"] and out["verified"]
    assert state(dockyard, "prod") == {"versions": [2, 1], "labels": {2: [DEPLOYED, KNOWN_GOOD]}, "held": False,
                                       "runs": images("v2")}
    tagged = {t.split("@")[1] for t in dockyard.registries.tags if ":release-prod-v2@" in t}
    assert tagged == {ref.split("@")[1] for ref in images("v2").values()}


@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_promote_killed_at_a_step_converges_with_deploy(dockyard, kill_switch, step):
    prod_on_1_dev_on_2(dockyard)
    killed(dockyard, kill_switch, step, "promote", "prod", "--from", "dev", "--yes")
    code, out, err = dockyard("deploy", "prod", "--json")  # the release is written: deploying it is what is left
    assert code == 0, err
    assert state(dockyard, "prod") == {"versions": [2, 1], "labels": {2: [DEPLOYED, KNOWN_GOOD]}, "held": False,
                                       "runs": images("v2")}


def test_promote_killed_after_writing_with_no_deploy_tags_on_the_rerun(dockyard, kill_switch):
    prod_on_1_dev_on_2(dockyard)
    killed(dockyard, kill_switch, "after-release-written", "promote", "prod", "--from", "dev", "--no-deploy",
           "--yes")
    assert not [t for t in dockyard.registries.tags if ":release-prod-v2@" in t]
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 0 and out["version"] == 2, err
    assert {t.split("@")[1] for t in dockyard.registries.tags if ":release-prod-v2@" in t} == \
        {ref.split("@")[1] for ref in images("v2").values()}
    assert state(dockyard, "prod")["versions"] == [2, 1]


def test_a_kill_during_the_automatic_rollback_is_finished_and_held_when_run_again(dockyard, kill_switch):
    prod_on_1_dev_on_2(dockyard)
    dockyard.engine.sabotage["prod"] = images("seed")  # v2 never runs in prod: its verification fails
    killed(dockyard, kill_switch, "during-auto-rollback", "promote", "prod", "--from", "dev", "--yes")
    assert state(dockyard, "prod")["held"] is False  # killed between writing the rollback and the hold
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 1, err
    assert "rolled back automatically to release 1 (as release 3, verified)" in out["error"]["message"]
    assert state(dockyard, "prod") == {"versions": [3, 2, 1], "labels": {3: [DEPLOYED, KNOWN_GOOD]},
                                       "held": True, "runs": images("seed")}
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 3 and "held" in out["error"]["message"]  # converged: held, nothing more written
    assert state(dockyard, "prod")["versions"] == [3, 2, 1]


def test_a_kill_during_the_automatic_rollback_converges_through_deploy_too(dockyard, kill_switch):
    prod_on_1_dev_on_2(dockyard)
    dockyard.engine.sabotage["prod"] = images("seed")
    killed(dockyard, kill_switch, "during-auto-rollback", "promote", "prod", "--from", "dev", "--yes")
    code, _, err = dockyard("deploy", "prod", "--json")
    assert code == 0, err
    assert state(dockyard, "prod") == {"versions": [3, 2, 1], "labels": {3: [DEPLOYED, KNOWN_GOOD]},
                                       "held": True, "runs": images("seed")}


@pytest.mark.parametrize("step", ["after-release-written", "after-tag", "during-up", "during-verify"])
def test_rollback_killed_at_a_step_converges_when_run_again(dockyard, kill_switch, step):
    prod_on_1_dev_on_2(dockyard)
    assert dockyard("promote", "prod", "--from", "dev", "--yes")[0] == 0
    killed(dockyard, kill_switch, step, "rollback", "prod", "--to", "1", "--yes")
    code, out, err = dockyard("rollback", "prod", "--to", "1", "--yes", "--json")
    assert code == 0, err
    assert out["version"] == 3 and out["restored"] == 1 and out["deployed"]
    assert state(dockyard, "prod") == {"versions": [3, 2, 1], "labels": {3: [DEPLOYED, KNOWN_GOOD]},
                                       "held": True, "runs": images("seed")}
    assert {t.split("@")[1] for t in dockyard.registries.tags if ":release-prod-v3@" in t} >= \
        {images("seed")["web"].split("@")[1]}
