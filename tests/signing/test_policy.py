"""dockyard:trust: which keys or OIDC identities may sign for an environment, validated like every key."""

from __future__ import annotations

import json

import pytest

from dockyard import config
from dockyard.errors import ConfigError, ManifestError
from dockyard.manifest import Release, Verification
from dockyard.config.trust import GITHUB_ISSUER

DIGEST = "sha256:" + "a" * 64
PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def app(**values):
    values.setdefault("services", {"web": {"port": 8080}})
    raw = {f"dockyard:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in {"role": "app", **values}.items()}
    return config.load(raw, stack="prod")


def refused(message: str, trust) -> None:
    with pytest.raises(ConfigError) as err:
        app(trust=trust)
    assert message in err.value.message, err.value.message


def test_absent_trust_is_not_the_same_as_verify_nothing():
    assert app().trust is None
    assert app(trust="none").trust.verify is False


def test_keys_and_identities_with_both_checks_required_by_default():
    policy = app(trust={"keys": ["~/.cache/dockyard/keys/cosign.pub", PEM],
                        "identities": [{"issuer": GITHUB_ISSUER,
                                        "subject": r"^https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main$"}]}).trust
    assert policy.verify and policy.keys == ("~/.cache/dockyard/keys/cosign.pub", PEM)
    assert policy.identities[0].issuer == GITHUB_ISSUER
    assert policy.attestation and policy.describe().startswith("2 key(s), 1 identity")


def test_signature_only_policy():
    assert app(trust={"keys": [PEM], "require": ["signature"]}).trust.attestation is False


@pytest.mark.parametrize("trust, message", [
    ("all", "dockyard:trust: got 'all'; expected 'none' or an object of keys, identities, require"),
    ({}, "dockyard:trust: names no key and no identity"),
    ({"keys": "k.pub"}, "dockyard:trust.keys: got 'k.pub'; expected a list"),
    ({"keys": [""]}, "dockyard:trust.keys[0]: got ''; expected a public key (PEM) or the path of one"),
    ({"keys": ["k.pub"], "owner": "me"}, "dockyard:trust.owner is not a setting here"),
    ({"identities": [{"issuer": "https://x"}]}, "dockyard:trust.identities[0].subject: got None"),
    ({"identities": [{"issuer": "x", "subject": "a"}]}, "dockyard:trust.identities[0].issuer: got 'x'; expected an https:// URL"),
    ({"identities": [{"issuer": "https://x", "subject": "(("}]}, "dockyard:trust.identities[0].subject: got '(('; expected a regular expression"),
    ({"keys": ["k.pub"], "require": ["attestation"]}, "dockyard:trust.require: got ['attestation']; expected a list that includes signature"),
    ({"keys": ["k.pub"], "require": ["signature", "sbom"]}, "dockyard:trust.require[1]: got 'sbom'; expected one of signature, attestation"),
])
def test_bad_policies_name_the_key_path(trust, message):
    refused(message, trust)


def test_trust_is_an_app_setting():
    with pytest.raises(ConfigError, match="dockyard:trust applies to role app"):
        config.load({"dockyard:role": "registry", "dockyard:trust": "none"}, stack="registry",
                    discovered_services=["web"])


def test_manifest_records_what_was_verified_and_older_manifests_stay_valid():
    old = Release.from_json(json.dumps({"schema": 1, "images": {"web": f"r.example/web@{DIGEST}"}}))
    assert old.verified == {}
    data = {"schema": 1, "images": {"web": f"r.example/web@{DIGEST}"},
            "verified": {"web": {"signer": "key sha256:ab", "keyId": "sha256:ab", "attestation": "sha256:cd",
                                 "commit": "c" * 40}}}
    release = Release.from_json(json.dumps(data))
    assert release.verified["web"] == Verification(signer="key sha256:ab", key_id="sha256:ab",
                                                   attestation="sha256:cd", commit="c" * 40)
    assert json.loads(release.to_json()) == data
    with pytest.raises(ManifestError, match="verified.web"):
        Release.from_dict({**data, "verified": {"web": {"signer": 3}}})
    with pytest.raises(ManifestError, match="verified.api: no such image"):
        Release.from_dict({**data, "verified": {"api": {"signer": "x"}}})
