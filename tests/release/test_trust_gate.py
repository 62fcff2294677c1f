"""The trust gate in promote, rollback and branch up: nothing is written unless every new image is proven.

cosign itself is faked here (a verifier that knows which digests are "signed"); tests/signing runs the
real one against a real registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dockyard.images import ImageRef
from dockyard.manifest import Verification
from dockyard.release.trust.gate import Untrusted
from tests.release.conftest import images, publish_registry

KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


class FakeVerifier:
    """Digests it was told are signed verify; the rest are refused as unsigned. Commits come from `revisions`."""

    def __init__(self) -> None:
        self.signed: dict[str, str] = {}  # digest -> commit its attestation names
        self.revisions: dict[str, str] = {}  # digest -> the image's own revision label
        self.asked: list[str] = []

    def sign(self, text: str, commit: str = "c" * 40) -> None:
        digest = ImageRef.parse_pinned(text).digest
        self.signed[digest] = self.revisions[digest] = commit

    def revision(self, ref):
        return self.revisions.get(ref.digest)

    def verify(self, ref, policy, *, commit, base_dir):
        self.asked.append(ref.digest)
        if ref.digest not in self.signed:
            raise Untrusted("not signed (no signature in the registry beside it)")
        if commit is not None and self.signed[ref.digest] != commit:
            raise Untrusted(f"its attestation names commit {self.signed[ref.digest][:12]}, not {commit[:12]}")
        return Verification(signer="key sha256:test", key_id="sha256:test", attestation="sha256:att",
                            commit=self.signed[ref.digest])


@pytest.fixture()
def gate(dockyard, monkeypatch):
    verifier = FakeVerifier()
    from dockyard.release import cli

    make = cli.make_context

    def context(project_dir):
        ctx = make(project_dir)
        ctx.verifier = verifier
        return ctx

    monkeypatch.setattr(cli, "make_context", context)
    return verifier


def set_trust(dockyard, env: str, trust) -> None:
    path = Path(dockyard.project.dir) / f"Pulumi.{env}.yaml"
    data = yaml.safe_load(path.read_text())
    if trust is None:
        data["config"].pop("dockyard:trust", None)
    else:
        data["config"]["dockyard:trust"] = trust
    path.write_text(yaml.safe_dump(data))


def store_files(dockyard, env: str) -> str:
    _, out, _ = dockyard("history", env, "--json")
    return json.dumps(out, sort_keys=True)


def test_signed_images_promote_and_the_release_records_who_signed_them(dockyard, gate):
    set_trust(dockyard, "dev", {"keys": [KEY]})
    for text in images("seed").values():
        gate.sign(text)
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    _, history, _ = dockyard("history", "dev", "--json")
    assert history["releases"][0]["verified"]["web"] == {"signer": "key sha256:test", "keyId": "sha256:test",
                                                         "attestation": "sha256:att", "commit": "c" * 40}
    _, status, _ = dockyard("status", "dev", "--json")
    assert status["environments"]["dev"]["verified"]["worker"]["commit"] == "c" * 40


def test_unsigned_image_is_refused_with_exit_2_naming_service_and_digest_and_nothing_is_written(dockyard, gate):
    set_trust(dockyard, "dev", {"keys": [KEY]})
    gate.sign(images("seed")["worker"])
    before = store_files(dockyard, "dev")
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 2
    digest = ImageRef.parse_pinned(images("seed")["web"]).digest
    assert out["error"]["message"] == f"web: {digest}: not signed (no signature in the registry beside it)"
    assert store_files(dockyard, "dev") == before
    assert dockyard.registries.tags == []  # no release tag moved


def test_attestation_naming_another_commit_is_refused(dockyard, gate):
    set_trust(dockyard, "dev", {"keys": [KEY]})
    for text in images("seed").values():
        gate.sign(text)
    web = ImageRef.parse_pinned(images("seed")["web"]).digest
    gate.revisions[web] = "d" * 40  # the image says it was built from d..., its attestation says c...
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 2 and out["error"]["message"].startswith(f"web: {web}: its attestation names commit cccccccccccc")


def test_environment_without_a_trust_policy_refuses_promotion_and_status_warns(dockyard, gate):
    set_trust(dockyard, "dev", None)
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 2 and "dev has no trust policy (dockyard:trust)" in out["error"]["message"]
    _, status, _ = dockyard("status", "--json")
    assert "no dockyard:trust" in status["environments"]["dev"]["trust"]
    assert "promotes unverified images" in status["environments"]["prod"]["trust"]  # trust: none


def test_prod_can_demand_what_dev_does_not(dockyard, gate):
    # dev verifies nothing (explicitly); prod requires signatures: an unsigned image stops at prod's door.
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    set_trust(dockyard, "prod", {"keys": [KEY]})
    before = store_files(dockyard, "prod")
    code, out, _ = dockyard("promote", "prod", "--from", "dev", "--no-deploy", "--yes", "--json")
    assert code == 2 and "not signed" in out["error"]["message"]
    assert store_files(dockyard, "prod") == before


def test_rollback_to_an_image_whose_signature_is_gone_is_refused(dockyard, gate):
    dockyard("promote", "prod", "--from", "registry", "--no-deploy", "--yes")
    publish_registry(dockyard, "v2")
    dockyard("promote", "prod", "--from", "registry", "--no-deploy", "--yes")
    set_trust(dockyard, "prod", {"keys": [KEY]})
    before = store_files(dockyard, "prod")
    code, out, _ = dockyard("rollback", "prod", "--to", "1", "--no-deploy", "--yes", "--json")
    assert code == 2 and "not signed" in out["error"]["message"]
    assert store_files(dockyard, "prod") == before
    for text in images("seed").values():
        gate.sign(text)
    code, out, err = dockyard("rollback", "prod", "--to", "1", "--no-deploy", "--yes", "--json")
    assert code == 0, err


def test_unchanged_images_are_not_verified_again_and_keep_their_record(dockyard, gate):
    set_trust(dockyard, "dev", {"keys": [KEY]})
    for text in [*images("seed").values(), *images("v2").values()]:
        gate.sign(text)
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    publish_registry(dockyard, "v2")
    gate.asked.clear()
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--service", "web", "--no-deploy", "--yes",
                              "--json")
    assert code == 0, err
    assert gate.asked == [ImageRef.parse_pinned(images("v2")["web"]).digest]
    _, history, _ = dockyard("history", "dev", "--json")
    assert set(history["releases"][0]["verified"]) == {"web", "worker"}


def test_branch_up_with_an_unsigned_image_is_refused_before_any_stack_exists(dockyard, gate):
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    set_trust(dockyard, "dev", {"keys": [KEY]})
    branch_web = images("branch")["web"]
    code, out, _ = dockyard("branch", "up", "feature/x", "--image", f"web={branch_web}", "--json")
    assert code == 2 and out["error"]["message"].startswith(f"web: {ImageRef.parse_pinned(branch_web).digest}: not signed")
    assert not list(Path(dockyard.project.dir).glob("Pulumi.branch-*.yaml")) and dockyard.engine.ups == []
    gate.sign(branch_web)
    code, out, err = dockyard("branch", "up", "feature/x", "--image", f"web={branch_web}", "--json")
    assert code == 0, err
