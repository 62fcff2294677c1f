"""What an image says about itself, read by digest before a release is written: its user (root and names
refused, exit 2, with the key that fixes it, nothing written) and its revision label (recorded, shown by
status and history)."""

from __future__ import annotations

import yaml

from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.registries.oci import api_repository
from tests.release.conftest import images, publish_registry


def key(ref: str) -> str:
    parsed = ImageRef.parse_pinned(ref)
    return f"{parsed.registry}/{api_repository(parsed)}@{parsed.digest}"


def set_image(d, service: str, build: str, user: str, commit: str | None = None) -> str:
    ref = images(build)[service]
    d.registries.configs[key(ref)] = (user, commit)
    return ref


def releases_of(d, env: str) -> list:
    code, out, _ = d("history", env, "--json")
    return out["releases"] if code == 0 else []


def set_service_key(d, env: str, service: str, name: str, value) -> None:
    path = d.project.config_file(env)
    data = yaml.safe_load(path.read_text())
    data["config"]["dockyard:services"][service][name] = value
    path.write_text(yaml.safe_dump(data))


def test_promote_records_each_images_user_and_commit_and_status_shows_the_commit(dockyard):
    set_image(dockyard, "web", "seed", "101:101", "aaaa1111bbbb2222cccc3333dddd4444eeee5555")
    set_image(dockyard, "worker", "seed", "999", "ffff6666")
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    (release,) = releases_of(dockyard, "dev")
    assert release["commits"] == {"web": "aaaa1111bbbb2222cccc3333dddd4444eeee5555", "worker": "ffff6666"}
    stored = dockyard.project.store(dockyard.project.environment("dev"), dockyard.ssm).current().release
    assert stored.image_config["web"].user == "101:101" and stored.image_config["worker"].user == "999"
    code, status, _ = dockyard("status", "dev", "--json")
    assert status["environments"]["dev"]["commits"]["web"].startswith("aaaa1111")
    code, text, _ = dockyard("status", "dev")
    assert "COMMIT" in text and "aaaa1111bbbb" in text


def test_promoting_further_carries_what_was_read_without_asking_the_registry_again(dockyard):
    set_image(dockyard, "web", "seed", "101", "aaaa1111")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    reads = dockyard.registries.config_reads
    code, _, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--no-deploy", "--yes")
    assert code == 0, err
    assert dockyard.registries.config_reads == reads
    assert releases_of(dockyard, "prod")[0]["commits"]["web"] == "aaaa1111"


def test_an_image_that_would_run_as_root_is_refused_before_anything_is_written(dockyard):
    for user in ("", "0", "root", "0:0"):
        set_image(dockyard, "web", "seed", user)
        code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
        assert code == 2, (user, err)
        assert out["error"]["code"] == "bad-input"
        assert "dockyard:services.web.runAsUser" in out["error"]["message"] and "root" in out["error"]["message"]
        assert "pulumi config set --path 'dockyard:services.web.runAsUser'" in out["error"]["hint"]
        assert releases_of(dockyard, "dev") == [] and dockyard.registries.tags == []


def test_an_image_that_names_its_user_is_refused_until_the_service_sets_its_uid(dockyard):
    set_image(dockyard, "web", "seed", "www-data")
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 2 and "'www-data'" in err and "dockyard:services.web.runAsUser" in err
    assert releases_of(dockyard, "dev") == []
    set_service_key(dockyard, "dev", "web", "runAsUser", 33)
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 0, err


def test_rollback_trusts_the_record_and_reads_images_an_older_release_never_recorded(dockyard):
    store = dockyard.project.store(dockyard.project.environment("dev"), dockyard.ssm)
    # Release 1 as a dockyard without imageConfig wrote it; its web image turns out to run as root.
    store.append(Release(images={s: ImageRef.parse_pinned(r) for s, r in images("seed").items()}, source="old"),
                 expected=None)
    publish_registry(dockyard, "v2")
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 0, err
    set_image(dockyard, "web", "seed", "root")
    code, _, err = dockyard("rollback", "dev", "--to", "1", "--no-deploy", "--yes")
    assert code == 2 and "would run as root" in err
    assert [r["version"] for r in releases_of(dockyard, "dev")] == [2, 1] and store.hold() is None
    # Release 2 recorded its (non-root) users: rolling back to it needs no registry read and passes.
    publish_registry(dockyard, "v3")
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    reads = dockyard.registries.config_reads
    code, _, err = dockyard("rollback", "dev", "--to", "2", "--no-deploy", "--yes")
    assert code == 0, err
    assert dockyard.registries.config_reads == reads


def test_a_branch_image_that_would_run_as_root_opens_no_branch(dockyard):
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    root = set_image(dockyard, "web", "v3", "0")
    code, _, err = dockyard("branch", "up", "feature/x", "--base", "dev", "--image", f"web={root}")
    assert code == 2 and "would run as root" in err
    assert not dockyard.project.config_file("branch-feature-x").exists()
