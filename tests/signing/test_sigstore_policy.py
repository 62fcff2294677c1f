"""dockyard:trust beyond keys and identities: anchored identity patterns, a private Sigstore, offline checks."""

from __future__ import annotations

import pytest

from dockyard.errors import ConfigError
from dockyard.config.trust import GITHUB_ISSUER
from tests.signing.test_policy import PEM, app

MAIN = r"^https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main$"


@pytest.mark.parametrize("subject", [
    r"https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main",  # main-x would match
    r"^https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main",
    r"https://github\.com/acme/shop/.+$",  # https://evil.example/?https://github.com/acme/shop/x would match
    r"^https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main\$",  # an escaped $ anchors nothing
])
def test_unanchored_identity_patterns_are_refused_with_the_anchored_fix(subject):
    with pytest.raises(ConfigError) as err:
        app(trust={"identities": [{"issuer": GITHUB_ISSUER, "subject": subject}]})
    assert err.value.message.startswith("dockyard:trust.identities[0].subject: got ")
    assert "anchored" in err.value.message and "^" in (err.value.hint or "") and "$" in (err.value.hint or "")


def test_anchored_patterns_are_matched_whole_even_with_alternatives():
    policy = app(trust={"identities": [{"issuer": GITHUB_ISSUER, "subject": r"^a$|^b$"}]}).trust
    # cosign matches unanchored: what it is given is anchored as a whole, whatever the pattern's alternatives.
    assert policy.identities[0].cosign_pattern() == r"^(?:^a$|^b$)$"


def test_a_private_sigstore_and_offline_checks_are_settings():
    policy = app(trust={"identities": [{"issuer": "https://oidc.internal.example", "subject": MAIN}],
                        "sigstore": {"trustedRoot": "sigstore/trusted_root.json",
                                     "rekorUrl": "https://rekor.internal.example"},
                        "offline": True}).trust
    assert policy.sigstore.trusted_root == "sigstore/trusted_root.json" and policy.offline
    mirror = app(trust={"keys": [PEM], "tlog": True,
                        "sigstore": {"tufMirror": "https://tuf.internal.example", "tufRoot": "root.json"}}).trust
    assert mirror.sigstore.tuf_mirror == "https://tuf.internal.example" and mirror.tlog is True
    assert app(trust={"keys": [PEM]}).trust.tlog is None  # identities need log entries, keys do not


@pytest.mark.parametrize("trust, message", [
    ({"keys": [PEM], "sigstore": {"tufMirror": "https://tuf.example"}},
     "dockyard:trust.sigstore.tufRoot is not set"),
    ({"keys": [PEM], "sigstore": {"trustedRoot": "t.json", "tufMirror": "https://m", "tufRoot": "r.json"}},
     "dockyard:trust.sigstore: trustedRoot and tufMirror"),
    ({"keys": [PEM], "sigstore": {"mirror": "x"}}, "dockyard:trust.sigstore.mirror is not a setting here"),
    ({"keys": [PEM], "sigstore": {"rekorUrl": "rekor.example"}}, "dockyard:trust.sigstore.rekorUrl: got 'rekor.example'"),
    ({"keys": [PEM], "offline": "yes"}, "dockyard:trust.offline: got 'yes'; expected true or false"),
    ({"identities": [{"issuer": GITHUB_ISSUER, "subject": MAIN}], "tlog": False},
     "dockyard:trust.tlog: false with identities needs a private Sigstore"),
])
def test_bad_sigstore_settings_name_the_key_path(trust, message):
    with pytest.raises(ConfigError) as err:
        app(trust=trust)
    assert message in err.value.message, err.value.message
