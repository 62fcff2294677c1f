"""promote ENV --from SRC takes what was proven in SRC (its known-good release), not merely its newest."""

from __future__ import annotations

import json

from tests.release.conftest import images, publish_registry


def dev_with_an_unverified_release(d) -> None:
    """dev: release 1 deployed and verified (known-good); release 2 written and never verified."""
    code, _, err = d("promote", "dev", "--from", "registry", "--yes")
    assert code == 0, err
    publish_registry(d, "v2")
    code, _, err = d("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 0, err


def test_promote_from_an_environment_takes_its_known_good_release_and_names_the_newer_one(dockyard):
    dev_with_an_unverified_release(dockyard)
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    assert out["source"] == "dev:v1" and out["images"] == images("seed")
    assert out["newerUnverified"] == "dev:v2" and out["unverified"] is False
    code, text, _ = dockyard("promote", "staging", "--from", "dev", "--no-deploy", "--yes")
    assert code == 0
    assert "dev:v2 is newer but has not passed verification in dev" in text
    assert "--unverified" in text


def test_taking_the_unverified_release_needs_the_flag_and_is_recorded(dockyard):
    dev_with_an_unverified_release(dockyard)
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    assert out["source"] == "dev:v2" and out["images"] == images("v2") and out["unverified"] is True
    _, history, _ = dockyard("history", "prod", "--json")
    assert history["releases"][0]["unverified"] == "dev:v2"
    stored = dockyard.project.store(dockyard.project.environment("prod"), dockyard.ssm).current()
    assert json.loads(stored.release.to_json())["unverified"] == "dev:v2"


def test_a_source_that_never_verified_a_release_is_refused_with_the_flag_as_the_way_out(dockyard):
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 0, err
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 2
    assert "dev has no known-good release" in out["error"]["message"]
    assert "--unverified" in out["error"]["hint"]


def test_a_release_that_failed_verification_in_dev_does_not_reach_prod(dockyard):
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--yes")
    assert code == 0, err
    publish_registry(dockyard, "v2")
    dockyard.engine.sabotage["dev"] = images("seed")  # v2 never runs in dev
    code, _, _ = dockyard("promote", "dev", "--from", "registry", "--yes", "--no-rollback")
    assert code == 1
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    assert out["images"] == images("seed") and out["newerUnverified"] == "dev:v2"


def test_the_registry_is_promoted_from_its_newest_release(dockyard):
    publish_registry(dockyard, "v2")
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    assert out["images"] == images("v2") and out["newerUnverified"] is None
