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
from dockyard.validation import fail, known_keys

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
CHECKS = ("signature", "attestation")
TRUST_KEYS = ("keys", "identities", "require", "sigstore", "offline", "tlog")
IDENTITY_KEYS = ("issuer", "subject")
SIGSTORE_KEYS = ("trustedRoot", "tufMirror", "tufRoot", "rekorUrl")


@dataclass(frozen=True)
class Identity:
    """A keyless signer: the OIDC issuer exactly, the certificate's subject by regular expression."""

    issuer: str
    subject: str  # a regular expression, anchored at both ends (cosign's --certificate-identity-regexp is not)

    def cosign_pattern(self) -> str:
        """What cosign is given: cosign matches anywhere, so the whole pattern is anchored once more."""
        return f"^(?:{self.subject})$"


@dataclass(frozen=True)
class Sigstore:
    """A Sigstore deployment other than the public one (or the public one's roots, kept for air-gapped runs)."""

    trusted_root: str | None = None  # a trusted_root.json (cosign --trusted-root): no TUF at all
    tuf_mirror: str | None = None  # a TUF repository (cosign initialize --mirror) ...
    tuf_root: str | None = None  # ... and its root.json, obtained out of band (--root)
    rekor_url: str | None = None  # the transparency log to look entries up in (cosign --rekor-url)


@dataclass(frozen=True)
class TrustPolicy:
    verify: bool
    keys: tuple[str, ...] = ()  # PEM text, or the path of a PEM file
    identities: tuple[Identity, ...] = ()
    attestation: bool = True  # a build attestation naming the image's commit is required too
    sigstore: Sigstore = Sigstore()
    offline: bool = False  # never ask Rekor: a signature's own log bundle proves its entry (cosign --offline)
    # Transparency-log entries: None (unset) requires them for identities only (key signatures are made
    # offline); True for keys too; False for neither, allowed only with a private Sigstore (bring your own PKI).
    tlog: bool | None = None

    def describe(self) -> str:
        if not self.verify:
            return "none (verify nothing)"
        parts = [f"{len(self.keys)} key(s)"] if self.keys else []
        if self.identities:
            parts.append(f"{len(self.identities)} identity(ies)")
        return ", ".join(parts) + (", signature + attestation" if self.attestation else ", signature only")


NONE = TrustPolicy(verify=False)


def parse_trust(value: Any) -> TrustPolicy:
    """The policy from `dockyard:trust` (already JSON-decoded), or a ConfigError naming the key path."""
    if value == "none":
        return NONE
    if not isinstance(value, dict):
        raise fail("trust", value, "'none' or an object of keys, identities, require")
    known_keys("trust", value, TRUST_KEYS)
    keys = tuple(_key(f"trust.keys[{i}]", k) for i, k in enumerate(_list("trust.keys", value.get("keys", []))))
    identities = tuple(_identity(f"trust.identities[{i}]", entry)
                       for i, entry in enumerate(_list("trust.identities", value.get("identities", []))))
    if not keys and not identities:
        raise ConfigError("dockyard:trust: names no key and no identity; list the keys or OIDC identities that "
                          "may sign for this environment, or set it to none to promote unverified images")
    require = _list("trust.require", value.get("require", list(CHECKS)))
    for i, check in enumerate(require):
        if check not in CHECKS:
            raise fail(f"trust.require[{i}]", check, "one of " + ", ".join(CHECKS))
    if "signature" not in require:
        raise fail("trust.require", require, "a list that includes signature (an attestation is checked "
                                              "with the same signer)")
    return TrustPolicy(verify=True, keys=keys, identities=identities, attestation="attestation" in require,
                       sigstore=_sigstore(value.get("sigstore", {})), offline=_flag("trust.offline", value, False),
                       tlog=_tlog(value, identities))


def _tlog(value: dict, identities: tuple[Identity, ...]) -> bool | None:
    if "tlog" not in value:
        return None
    tlog = _flag("trust.tlog", value, True)
    sigstore = value.get("sigstore") or {}
    if not tlog and identities and not (sigstore.get("trustedRoot") or sigstore.get("tufMirror")):
        raise ConfigError("dockyard:trust.tlog: false with identities needs a private Sigstore "
                          "(dockyard:trust.sigstore.trustedRoot or tufMirror): a public-Sigstore certificate "
                          "lives ten minutes, and only its log entry proves it signed in time")
    return tlog


def _flag(path: str, value: dict, default: bool) -> bool:
    flag = value.get(path.rsplit(".", 1)[-1], default)
    if not isinstance(flag, bool):
        raise fail(path, flag, "true or false")
    return flag


def _sigstore(value: Any) -> Sigstore:
    if not isinstance(value, dict):
        raise fail("trust.sigstore", value, "an object of " + ", ".join(SIGSTORE_KEYS))
    known_keys("trust.sigstore", value, SIGSTORE_KEYS)
    for key in SIGSTORE_KEYS:
        if key in value and (not isinstance(value[key], str) or not value[key].strip()):
            raise fail(f"trust.sigstore.{key}", value[key], "a non-empty string")
    for key in ("tufMirror", "rekorUrl"):
        if key in value and not re.match(r"^(https?|file)://", value[key]):
            raise fail(f"trust.sigstore.{key}", value[key], "an https:// (or file://) URL")
    if "trustedRoot" in value and "tufMirror" in value:
        raise ConfigError("dockyard:trust.sigstore: trustedRoot and tufMirror both set; a trusted root file "
                          "replaces TUF, so set one")
    if ("tufMirror" in value) != ("tufRoot" in value):
        missing = "tufRoot" if "tufMirror" in value else "tufMirror"
        raise ConfigError(f"dockyard:trust.sigstore.{missing} is not set; a TUF mirror is trusted only through "
                          "the root.json you obtained for it out of band: set both tufMirror and tufRoot")
    return Sigstore(trusted_root=value.get("trustedRoot"), tuf_mirror=value.get("tufMirror"),
                    tuf_root=value.get("tufRoot"), rekor_url=value.get("rekorUrl"))


def anchored(pattern: str) -> bool:
    """Anchored at both ends: `^` first, an unescaped `$` last."""
    if not pattern.startswith("^") or not pattern.endswith("$"):
        return False
    backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, value, "a list")
    return value


def _key(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(path, value, "a public key (PEM) or the path of one")
    if "-----BEGIN" in value and "PUBLIC KEY-----" not in value:
        raise fail(path, value[:40] + "...", "a PEM public key (-----BEGIN PUBLIC KEY-----), never a private key")
    return value


def _identity(path: str, value: Any) -> Identity:
    if not isinstance(value, dict):
        raise fail(path, value, "an object of issuer, subject")
    known_keys(f"{path}", value, IDENTITY_KEYS)
    issuer, subject = value.get("issuer"), value.get("subject")
    if not isinstance(issuer, str) or not issuer.startswith("https://"):
        raise fail(f"{path}.issuer", issuer, f"an https:// URL, e.g. {GITHUB_ISSUER}")
    if not isinstance(subject, str) or not subject:
        raise fail(f"{path}.subject", subject, "a regular expression for the signing workflow, e.g. "
                                                r"^https://github\.com/<owner>/<repo>/\.github/workflows/"
                                                r"build\.yml@refs/heads/main$")
    try:
        re.compile(subject)
    except re.error:
        raise fail(f"{path}.subject", subject, "a regular expression") from None
    if not anchored(subject):
        # cosign matches the pattern anywhere in the identity: ...@refs/heads/main would also accept main-x.
        fixed = "^" + subject.lstrip("^").removesuffix("$").rstrip("\\") + "$"
        raise ConfigError(f"dockyard:{path}.subject: got {subject!r}; expected a pattern anchored at both ends "
                          "(cosign matches it anywhere in the signer's identity, so an unanchored one also "
                          "accepts identities that merely contain it)", hint=f"write it as {fixed!r}")
    return Identity(issuer=issuer, subject=subject)
