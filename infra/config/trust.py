"""`dockyard:trust`: who may sign the images an environment runs, and what must be proven. Pure.

`none` is the explicit "verify nothing"; an object names public keys and/or
OIDC identities (issuer + subject pattern), any one of which may sign, and
which checks are required: the signature, and the build attestation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ConfigError

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
CHECKS = ("signature", "attestation")
TRUST_KEYS = ("keys", "identities", "require")
IDENTITY_KEYS = ("issuer", "subject")


@dataclass(frozen=True)
class Identity:
    """A keyless signer: the OIDC issuer exactly, the certificate's subject by regular expression."""

    issuer: str
    subject: str  # a regular expression, as cosign's --certificate-identity-regexp takes it


@dataclass(frozen=True)
class TrustPolicy:
    verify: bool
    keys: tuple[str, ...] = ()  # PEM text, or the path of a PEM file
    identities: tuple[Identity, ...] = ()
    attestation: bool = True  # a build attestation naming the image's commit is required too

    def describe(self) -> str:
        if not self.verify:
            return "none (verify nothing)"
        parts = [f"{len(self.keys)} key(s)"] if self.keys else []
        if self.identities:
            parts.append(f"{len(self.identities)} identity(ies)")
        return ", ".join(parts) + (", signature + attestation" if self.attestation else ", signature only")


NONE = TrustPolicy(verify=False)


def _fail(path: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"dockyard:{path}: got {value!r}; expected {expected}")


def parse_trust(value: Any) -> TrustPolicy:
    """The policy from `dockyard:trust` (already JSON-decoded), or a ConfigError naming the key path."""
    if value == "none":
        return NONE
    if not isinstance(value, dict):
        raise _fail("trust", value, "'none' or an object of keys, identities, require")
    for key in value:
        if key not in TRUST_KEYS:
            raise ConfigError(f"dockyard:trust.{key} is not a setting here; known keys: {', '.join(TRUST_KEYS)}")
    keys = tuple(_key(f"trust.keys[{i}]", k) for i, k in enumerate(_list("trust.keys", value.get("keys", []))))
    identities = tuple(_identity(f"trust.identities[{i}]", entry)
                       for i, entry in enumerate(_list("trust.identities", value.get("identities", []))))
    if not keys and not identities:
        raise ConfigError("dockyard:trust: names no key and no identity; list the keys or OIDC identities that "
                          "may sign for this environment, or set it to none to promote unverified images")
    require = _list("trust.require", value.get("require", list(CHECKS)))
    for i, check in enumerate(require):
        if check not in CHECKS:
            raise _fail(f"trust.require[{i}]", check, "one of " + ", ".join(CHECKS))
    if "signature" not in require:
        raise _fail("trust.require", require, "a list that includes signature (an attestation is checked "
                                              "with the same signer)")
    return TrustPolicy(verify=True, keys=keys, identities=identities, attestation="attestation" in require)


def _list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, value, "a list")
    return value


def _key(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, value, "a public key (PEM) or the path of one")
    if "-----BEGIN" in value and "PUBLIC KEY-----" not in value:
        raise _fail(path, value[:40] + "...", "a PEM public key (-----BEGIN PUBLIC KEY-----), never a private key")
    return value


def _identity(path: str, value: Any) -> Identity:
    if not isinstance(value, dict):
        raise _fail(path, value, "an object of issuer, subject")
    for key in value:
        if key not in IDENTITY_KEYS:
            raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(IDENTITY_KEYS)}")
    issuer, subject = value.get("issuer"), value.get("subject")
    if not isinstance(issuer, str) or not issuer.startswith("https://"):
        raise _fail(f"{path}.issuer", issuer, f"an https:// URL, e.g. {GITHUB_ISSUER}")
    if not isinstance(subject, str) or not subject:
        raise _fail(f"{path}.subject", subject, "a regular expression for the signing workflow, e.g. "
                                                r"^https://github\.com/<owner>/<repo>/\.github/workflows/"
                                                r"build\.yml@refs/heads/main$")
    try:
        re.compile(subject)
    except re.error:
        raise _fail(f"{path}.subject", subject, "a regular expression") from None
    return Identity(issuer=issuer, subject=subject)
