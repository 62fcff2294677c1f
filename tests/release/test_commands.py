"""The dockyard command through its entry point, against moto (SSM) and the file store: the same suite."""

from __future__ import annotations

import json

from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD
from tests.release.conftest import images, publish_registry


def history_versions(d, env: str) -> list[int]:
    code, out, _ = d("history", env, "--json")
    assert code == 0
    return [r["version"] for r in out["releases"]]


def seed(d) -> None:
    code, out, err = d("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    assert out["version"] == 1


def dev_ahead_of_prod(d) -> None:
    """prod runs release 1 of dev; dev has moved on to the registry's v2 images (its release 2)."""
    seed(d)
    d("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    publish_registry(d, "v2")
    d("promote", "dev", "--from", "registry", "--no-deploy", "--yes")


def test_promote_writes_the_source_images_as_a_new_version(dockyard):
    seed(dockyard)
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json",
                            "--reason", "release 2026.11")
    assert code == 0
    assert out["env"] == "prod" and out["from"] == "dev" and out["source"] == "dev:v1" and out["version"] == 1
    assert out["images"] == images("seed") and out["deployed"] is False
    _, history, _ = dockyard("history", "prod", "--json")
    (release,) = history["releases"]
    assert release["images"] == images("seed") and release["source"] == "dev:v1"
    assert release["by"] == "alice" and release["reason"] == "release 2026.11" and release["at"].endswith("Z")
    assert dockyard.engine.ups == []


def test_second_promote_after_the_source_changed_increments_the_version(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    publish_registry(dockyard, "v2")
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert out["version"] == 2 and out["changes"]["web"]["to"] == images("v2")["web"]
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 0 and out["version"] == 2 and out["images"] == images("v2")


def test_rollback_appends_an_old_release_and_history_is_newest_first(dockyard):
    dev_ahead_of_prod(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    code, out, _ = dockyard("rollback", "prod", "--to", "1", "--no-deploy", "--yes", "--json")
    assert code == 0
    assert out == {"env": "prod", "version": 3, "restored": 1, "images": images("seed"), "deployed": False,
                   "verified": False, "held": True}
    assert history_versions(dockyard, "prod") == [3, 2, 1]
    _, history, _ = dockyard("history", "prod", "--json", "--limit", "2")
    assert [r["version"] for r in history["releases"]] == [3, 2]
    assert history["releases"][0]["source"] == "rollback:v1"


def test_promoting_a_tag_exits_2_and_leaves_the_target_untouched(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    bad = json.dumps({"schema": 1, "images": {**images("x"), "web": "web:latest"}})
    dev_store = dockyard.project.store(dockyard.project.environment("dev"), dockyard.ssm)
    if dockyard.project.environment("dev").store_kind == "ssm":
        dockyard.ssm().put_parameter(Name="/dockyard/dev/release", Value=bad, Type="String", Overwrite=True)
    else:
        (dockyard.project.dir / ".dockyard/releases/dev/versions/000002.json").write_text(bad)
    del dev_store
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 2
    assert out["error"]["code"] == "bad-input" and "web:latest has no digest" in out["error"]["message"]
    assert "Traceback" not in err
    assert history_versions(dockyard, "prod") == [1]


def test_without_a_terminal_or_yes_promote_refuses_and_writes_nothing(dockyard):
    seed(dockyard)
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--json")
    assert code == 2 and "--yes" in out["error"]["hint"]
    code, _, _ = dockyard("history", "prod", "--json")
    assert history_versions(dockyard, "prod") == []


def test_nothing_to_change_writes_nothing(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 0 and out["changes"] == {} and out["version"] == 1
    code, text, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    assert "nothing to promote" in text
    assert history_versions(dockyard, "prod") == [1]


def test_service_flag_narrows_the_promotion(dockyard):
    dev_ahead_of_prod(dockyard)
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--service", "web", "--no-deploy", "--yes", "--json")
    assert code == 0 and set(out["changes"]) == {"web"}
    assert out["images"] == {"web": images("v2")["web"], "worker": images("seed")["worker"]}
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--service", "api", "--no-deploy", "--yes", "--json")
    assert code == 2 and "--service api" in out["error"]["message"]


def test_rollback_holds_the_environment_until_a_promotion_releases_it(dockyard):
    dev_ahead_of_prod(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    dockyard("rollback", "prod", "--to", "1", "--no-deploy", "--yes", "--reason", "bad release")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 3 and out["error"]["code"] == "conflict" and "held" in out["error"]["message"]
    assert "bad release" in out["error"]["message"] and "--release-hold" in out["error"]["hint"]
    assert history_versions(dockyard, "prod") == [3, 2, 1]
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["held"]["by"] == "alice"
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--release-hold", "--json")
    assert code == 0 and out["version"] == 4
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["held"] is None


def test_deploying_labels_deployed_and_known_good_and_status_reports_it(dockyard):
    seed(dockyard)
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 0, err
    assert out["deployed"] is True and out["verified"] is True
    assert dockyard.engine.ups == ["prod"]
    _, status, _ = dockyard("status", "--json")
    prod = status["environments"]["prod"]
    assert (prod["version"], prod["deployed"], prod["knownGood"], prod["drift"]) == (1, 1, 1, False)
    dev = status["environments"]["dev"]
    assert (dev["version"], dev["deployed"], dev["drift"]) == (1, None, True)
    assert status["environments"]["preview"]["source"] == "stack"
    _, history, _ = dockyard("history", "prod", "--json")
    assert sorted(history["releases"][0]["labels"]) == [DEPLOYED, KNOWN_GOOD]


def test_a_deploy_that_runs_something_else_fails_and_keeps_known_good(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--yes")
    publish_registry(dockyard, "v2")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    dockyard.engine.sabotage["prod"] = images("seed")  # the circuit breaker rolled back to the old images
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--yes", "--no-rollback", "--json")
    assert code == 1 and "release 2 of prod is written, but its deploy failed" in out["error"]["message"]
    assert "Traceback" not in err
    _, status, _ = dockyard("status", "prod", "--json")
    prod = status["environments"]["prod"]
    assert (prod["version"], prod["deployed"], prod["knownGood"]) == (2, 2, 1)


def test_rollback_defaults_to_known_good(dockyard):
    seed(dockyard)
    code, out, _ = dockyard("rollback", "dev", "--yes", "--json", "--no-deploy")
    assert code == 2 and "no known-good release" in out["error"]["message"]
    dockyard("promote", "prod", "--from", "dev", "--yes")
    publish_registry(dockyard, "v2")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    code, out, _ = dockyard("rollback", "prod", "--yes", "--json")
    assert code == 0 and out["restored"] == 1 and out["version"] == 3 and out["deployed"] is True
    assert dockyard.engine.deployed["prod"]["images"] == images("seed")
    code, out, _ = dockyard("rollback", "prod", "--to", "99", "--yes", "--json", "--no-deploy")
    assert code == 2 and "no release 99" in out["error"]["message"]


def test_stack_following_environment_is_refused_by_rollback_and_history(dockyard):
    for args in (("rollback", "preview", "--yes"), ("history", "preview"),
                 ("promote", "preview", "--from", "dev", "--yes")):
        code, out, _ = dockyard(*args, "--json")
        assert code == 2 and "follows the registry stack" in out["error"]["message"]
        assert "imageSource" in out["error"]["hint"]


def test_locked_stack_exits_3_and_says_the_release_is_not_deployed(dockyard):
    seed(dockyard)
    dockyard.engine.locked.add("prod")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 3 and out["error"]["code"] == "conflict"
    assert "written, but its deploy failed: stack prod is locked" in out["error"]["message"]
    code, out, _ = dockyard("deploy", "prod", "--json")
    assert code == 3


def test_bad_input_exit_codes_and_messages(dockyard):
    cases = [
        (("promote", "qa", "--from", "dev", "--yes"), "no environment 'qa'"),
        (("promote", "prod", "--from", "prod", "--yes"), "cannot promote prod into itself"),
        (("promote", "registry", "--from", "dev", "--yes"), "registry stack, not an environment"),
        (("promote", "prod", "--from", "dev", "--yes"), "dev has no release yet"),
        (("history", "prod", "--limit", "0"), "--limit 0"),
        (("deploy", "prod"), "prod has no release to deploy"),
    ]
    for args, message in cases:
        code, out, err = dockyard(*args, "--json")
        assert code == 2, (args, out)
        assert message in out["error"]["message"], (args, out)
        assert f"error: {out['error']['message']}" in err


def test_human_output_is_a_table_and_next_steps(dockyard):
    seed(dockyard)
    code, text, _ = dockyard("status")
    assert code == 0 and "ENV" in text and "KNOWN-GOOD" in text and "dev" in text
    code, text, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    assert "Promoted dev:v1 -> prod: release 1 (written, not deployed)" in text
    assert "Next: dockyard deploy prod" in text


def test_deploy_and_preview(dockyard):
    seed(dockyard)
    code, out, _ = dockyard("deploy", "dev", "--preview", "--json")
    assert code == 0 and out["preview"] is True and out["changes"] == {"create": 2, "same": 3}
    assert dockyard.engine.ups == []
    code, out, _ = dockyard("deploy", "dev", "--json")
    assert code == 0 and out["deployed"] is True and out["version"] == 1 and dockyard.engine.ups == ["dev"]
    code, out, _ = dockyard("deploy", "preview", "--json")
    assert code == 0 and out["images"] == images("seed")


def test_promote_takes_only_the_services_the_environment_runs(dockyard):
    from tests.release.conftest import write_stack

    write_stack(dockyard.project.dir, "canary", {"dockyard:role": "app", "dockyard:imageSource":
                                                 dockyard.project.environment("dev").store_kind,
                                                 "dockyard:services": {"web": {"port": 8080}},
                                                 "dockyard:trust": "none"})
    code, out, err = dockyard("promote", "canary", "--from", "registry", "--yes", "--json")
    assert code == 0, err
    assert out["images"] == {"web": images("seed")["web"]} and out["verified"] is True
    code, out, _ = dockyard("promote", "canary", "--from", "registry", "--service", "worker", "--yes", "--json")
    assert code == 2 and "canary runs no such service" in out["error"]["message"]


def test_first_release_must_cover_every_service_even_with_service_flag(dockyard):
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--service", "web", "--no-deploy", "--yes",
                            "--json")
    assert code == 2 and "no image for worker" in out["error"]["message"]
    assert history_versions(dockyard, "dev") == []


def test_release_hold_is_lifted_even_when_nothing_changes(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    publish_registry(dockyard, "v2")
    dockyard("promote", "staging", "--from", "registry", "--no-deploy", "--yes")
    dockyard("promote", "prod", "--from", "staging", "--no-deploy", "--yes")
    dockyard("rollback", "prod", "--to", "1", "--no-deploy", "--yes")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--release-hold", "--no-deploy", "--yes", "--json")
    assert code == 0 and out["changes"] == {}
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["held"] is None


def test_rollback_to_what_already_runs_is_refused(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--yes")
    code, out, _ = dockyard("rollback", "prod", "--yes", "--json")
    assert code == 2 and "nothing to roll back" in out["error"]["message"]
    assert history_versions(dockyard, "prod") == [1]


def test_a_release_written_during_the_deploy_is_reported_as_a_conflict(dockyard):
    seed(dockyard)
    dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes")
    publish_registry(dockyard, "v2")

    def someone_promotes(stack: str) -> None:
        dockyard.engine.before_up = None
        dockyard("promote", "prod", "--from", "registry", "--no-deploy", "--yes")

    dockyard.engine.before_up = someone_promotes
    code, out, _ = dockyard("deploy", "prod", "--json")
    assert code == 3 and "deployed release 2, not 1" in out["error"]["message"]
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["deployed"] == 2 and status["environments"]["prod"]["knownGood"] is None


def test_usage_errors_exit_2_with_one_json_document(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dockyard.release.cli", "rollback", "prod", "--to", "abc", "--json"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(
                              __file__).resolve().parents[2])})
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "bad-input"
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: Invalid value for '--to'")
