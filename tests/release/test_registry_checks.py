"""Promote and rollback prove every digest is in its registry (OCI here; ECR in test_aws_checks) before writing."""

from __future__ import annotations

from tests.release.conftest import images, publish_registry
from tests.release.test_commands import history_versions, seed


def test_promote_tags_each_promoted_digest_as_a_release_in_its_registry(dockyard):
    seed(dockyard)
    web = images("seed")["web"]
    host_repo, digest = web.split("@")
    assert f"{host_repo}:release-dev-v1@{digest}" in dockyard.registries.tags


def test_promote_of_a_digest_missing_from_its_registry_writes_nothing(dockyard):
    seed(dockyard)
    publish_registry(dockyard, "v2")
    dockyard.registries.delete(images("v2")["web"])
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 2
    assert out["error"]["code"] == "bad-input"
    assert out["error"]["message"].startswith(f"web: {images('v2')['web']} is missing (not in ghcr.io/acme/web)")
    assert history_versions(dockyard, "dev") == [1]
    assert not any(":release-dev-v2@" in tag for tag in dockyard.registries.tags)


def test_rollback_to_a_release_whose_digest_was_deleted_is_refused_before_writing(dockyard):
    seed(dockyard)
    publish_registry(dockyard, "v2")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    dockyard.registries.delete(images("seed")["web"])  # retention, or a person, removed release 1's web
    code, out, err = dockyard("rollback", "dev", "--to", "1", "--no-deploy", "--yes")
    assert code == 2
    assert "is missing" in err and "pick another: dockyard history dev" in err
    assert history_versions(dockyard, "dev") == [2, 1]
    code, out, _ = dockyard("status", "dev", "--json")
    assert out["environments"]["dev"]["version"] == 2


def test_rollback_tags_the_restored_digests_for_the_new_release(dockyard):
    seed(dockyard)
    publish_registry(dockyard, "v2")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    code, out, _ = dockyard("rollback", "dev", "--to", "1", "--no-deploy", "--yes", "--json")
    assert code == 0 and out["version"] == 3
    web = images("seed")["web"]
    assert f"{web.split('@')[0]}:release-dev-v3@{web.split('@')[1]}" in dockyard.registries.tags
