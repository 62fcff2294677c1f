"""A promote whose verification fails rolls the environment back to known-good by itself."""

from __future__ import annotations

from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD
from tests.release.conftest import images, publish_registry
from tests.release.test_commands import seed


def prod_on_release_1_then_dev_moves_on(d) -> None:
    seed(d)
    assert d("promote", "prod", "--from", "dev", "--yes")[0] == 0
    publish_registry(d, "v2")
    d("promote", "dev", "--from", "registry", "--no-deploy", "--yes")


def test_failed_verification_rolls_back_to_known_good_holds_and_says_so(dockyard):
    prod_on_release_1_then_dev_moves_on(dockyard)
    dockyard.engine.sabotage["prod"] = images("seed")  # what really runs after the update: the old images
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 1 and out["error"]["code"] == "failed"
    message = out["error"]["message"]
    assert "release 2 of prod failed verification" in message
    assert "rolled back automatically to release 1 (as release 3, verified)" in message
    assert "--release-hold" in out["error"]["hint"] and "Traceback" not in err
    _, history, _ = dockyard("history", "prod", "--json")
    newest, failed, first = history["releases"]
    assert newest["version"] == 3 and newest["images"] == images("seed")
    assert newest["rollback"]["of"] == 2 and newest["rollback"]["to"] == 1
    assert newest["rollback"]["cause"] == "automatic" and "the stack deployed web as" in newest["rollback"]["reason"]
    assert sorted(newest["labels"]) == [DEPLOYED, KNOWN_GOOD]
    assert failed["version"] == 2 and failed["outcome"] == "failed" and failed["labels"] == []
    _, status, _ = dockyard("status", "prod", "--json")
    prod = status["environments"]["prod"]
    assert (prod["version"], prod["deployed"], prod["knownGood"]) == (3, 3, 3)
    assert prod["held"] and prod["rollback"]["cause"] == "automatic"
    assert dockyard.engine.deployed["prod"]["images"] == images("seed")
    # Held: the next promote is refused until the cause is fixed and the hold released.
    assert dockyard("promote", "prod", "--from", "dev", "--yes", "--json")[0] == 3


def test_no_rollback_leaves_the_failed_release_written_and_deployed(dockyard):
    prod_on_release_1_then_dev_moves_on(dockyard)
    dockyard.engine.sabotage["prod"] = images("seed")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--yes", "--no-rollback", "--json")
    assert code == 1 and "release 2 of prod is written, but its deploy failed" in out["error"]["message"]
    _, status, _ = dockyard("status", "prod", "--json")
    prod = status["environments"]["prod"]
    assert (prod["version"], prod["deployed"], prod["knownGood"], prod["held"]) == (2, 2, 1, None)


def test_without_a_known_good_release_nothing_is_rolled_back(dockyard):
    dockyard.engine.sabotage["dev"] = images("other")
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 1
    assert "failed verification" in out["error"]["message"]
    assert "no known-good release, so nothing was rolled back" in out["error"]["message"]
    _, history, _ = dockyard("history", "dev", "--json")
    assert [r["version"] for r in history["releases"]] == [1]


def test_a_rollback_that_fails_its_own_verification_says_both(dockyard):
    prod_on_release_1_then_dev_moves_on(dockyard)
    dockyard.engine.sabotage["prod"] = images("other")  # nothing we deploy runs
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--yes", "--json")
    assert code == 1
    message = out["error"]["message"]
    assert "release 2 of prod failed verification" in message
    assert "the automatic rollback to release 1 (release 3) failed too" in message
    _, status, _ = dockyard("status", "prod", "--json")
    assert status["environments"]["prod"]["knownGood"] == 1 and status["environments"]["prod"]["held"]
