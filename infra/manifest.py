"""The release manifest: which pinned image each service runs (DESIGN "Release manifest")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import BadInput, ImageRefError, ManifestError
from dockyard.images import ImageRef
from dockyard.naming import validate_service_name

SCHEMA = 1
_OPTIONAL_TEXT = ("source", "commit", "by", "reason", "at", "unverified")
# Why a rollback release was written: by a person, by dockyard after a failed verification, by
# `dockyard abort` stopping an in-flight deployment, or by the orchestrator reverting on its own.
ROLLBACK_CAUSES = ("manual", "automatic", "aborted", "reverted")


@dataclass(frozen=True)
class Rollback:
    """A release that puts an earlier one back: which release it undoes, which it restores, and why."""

    of: int
    to: int
    cause: str
    reason: str = ""

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Rollback:
        if not isinstance(data, dict) or set(data) - {"of", "to", "cause", "reason"}:
            raise ManifestError(f"{where}: 'rollback' must be an object of of, to, cause, reason")
        of, to, cause, reason = data.get("of"), data.get("to"), data.get("cause"), data.get("reason", "")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (of, to)):
            raise ManifestError(f"{where}: rollback.of and rollback.to must be release numbers")
        if cause not in ROLLBACK_CAUSES or not isinstance(reason, str):
            raise ManifestError(f"{where}: rollback.cause must be one of {', '.join(ROLLBACK_CAUSES)}")
        return cls(of=of, to=to, cause=cause, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.of, "to": self.to, "cause": self.cause, "reason": self.reason}


_VERIFICATION_FIELDS = {"signer": "signer", "keyId": "key_id", "identity": "identity",
                        "attestation": "attestation", "commit": "commit"}


@dataclass(frozen=True)
class Verification:
    """What was proven about one image before it was written into the release: who signed it (a key id,
    or an OIDC identity), the digest of the build attestation checked, and the commit it names."""

    signer: str
    key_id: str | None = None
    identity: str | None = None
    attestation: str | None = None
    commit: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Verification:
        if not isinstance(data, dict) or set(data) - set(_VERIFICATION_FIELDS) or "signer" not in data:
            raise ManifestError(f"{where}: expected an object of {', '.join(_VERIFICATION_FIELDS)} (signer required)")
        if not all(isinstance(v, str) for v in data.values()):
            raise ManifestError(f"{where}: every field must be a string")
        return cls(**{_VERIFICATION_FIELDS[k]: v for k, v in data.items()})

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, a) for k, a in _VERIFICATION_FIELDS.items() if getattr(self, a) is not None}


_CHANGE_FIELDS = {"from": "old", "to": "new", "commits": "commits", "leaving": "leaving", "oldest": "oldest",
                  "newest": "newest", "note": "note"}


@dataclass(frozen=True)
class ChangeSummary:
    """One service's changelog as the release records it: the image revisions on either side, how many
    commits to its build inputs arrive and leave, and the commit times of the arriving ones (for lead time).
    The commits themselves are read from git again when shown; `note` says why they could not be."""

    old: str | None = None
    new: str | None = None
    commits: int | None = None
    leaving: int | None = None
    oldest: str | None = None
    newest: str | None = None
    note: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ChangeSummary:
        if not isinstance(data, dict) or set(data) - set(_CHANGE_FIELDS):
            raise ManifestError(f"{where}: expected an object of {', '.join(_CHANGE_FIELDS)}")
        for key, value in data.items():
            number = key in ("commits", "leaving")
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0 if number
                                   else isinstance(value, str))
            if not ok:
                raise ManifestError(f"{where}.{key}: expected {'a count' if number else 'a string'}")
        return cls(**{_CHANGE_FIELDS[k]: v for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, a) for k, a in _CHANGE_FIELDS.items() if getattr(self, a) is not None}


@dataclass(frozen=True)
class Override:
    """A promotion made while a freeze window was closed (`--override-window`): which window, and why."""

    window: str
    reason: str

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Override:
        if not isinstance(data, dict) or set(data) != {"window", "reason"} or not all(
                isinstance(v, str) for v in data.values()):
            raise ManifestError(f"{where}: 'override' must be an object of window, reason")
        return cls(window=data["window"], reason=data["reason"])

    def to_dict(self) -> dict[str, str]:
        return {"window": self.window, "reason": self.reason}


@dataclass(frozen=True)
class ImageFacts:
    """What an image's own config says, read from its registry by digest when the release was written: the
    user it runs as (`User`, "" when unset) and the commit it was built from (its
    `org.opencontainers.image.revision` label)."""

    user: str
    commit: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ImageFacts:
        if not isinstance(data, dict) or set(data) - {"user", "commit"} or not isinstance(data.get("user"), str) \
                or not isinstance(data.get("commit", ""), str):
            raise ManifestError(f"{where}: expected an object of user (a string) and commit")
        return cls(user=data["user"], commit=data.get("commit"))

    def to_dict(self) -> dict[str, str]:
        return {"user": self.user, **({"commit": self.commit} if self.commit else {})}


# SSM's advanced tier caps a value at 8 KiB; anything near that is not a manifest.
MAX_MANIFEST_BYTES = 8192


@dataclass(frozen=True)
class Release:
    """One release: service -> pinned image, and who/why/when it was made."""

    images: Mapping[str, ImageRef]
    source: str | None = None
    commit: str | None = None
    by: str | None = None
    reason: str | None = None
    at: str | None = None
    unverified: str | None = None  # the source release taken with --unverified (it had not verified there)
    rollback: Rollback | None = None
    verified: Mapping[str, Verification] = field(default_factory=dict)  # service -> what the trust gate proved
    changelog: Mapping[str, ChangeSummary] = field(default_factory=dict)  # service -> what changed, in commits
    override: Override | None = None  # promoted through a closed freeze window
    image_config: Mapping[str, ImageFacts] = field(default_factory=dict)  # service -> its image's user, commit
    schema: int = field(default=SCHEMA)

    @classmethod
    def from_json(cls, text: str, *, where: str = "release manifest") -> Release:
        if not isinstance(text, (str, bytes)):
            raise ManifestError(f"{where}: expected JSON text, got {type(text).__name__}")
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{where}: {len(text)} bytes is larger than a manifest can be ({MAX_MANIFEST_BYTES})")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise ManifestError(f"{where} is not valid JSON: {err}") from None
        return cls.from_dict(data, where=where)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "release manifest") -> Release:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {type(data).__name__}")
        schema = data.get("schema")
        if schema != SCHEMA or isinstance(schema, bool):
            raise ManifestError(f"{where}: schema is {schema!r}; this dockyard reads schema {SCHEMA}")
        unknown = sorted(set(data) - {"schema", "images", "rollback", "verified", "changelog", "override",
                                      "imageConfig", *_OPTIONAL_TEXT})
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        raw_images = data.get("images")
        if not isinstance(raw_images, dict) or not raw_images:
            raise ManifestError(f"{where}: 'images' must be a non-empty object of service -> pinned image")
        images = {}
        for service, ref in raw_images.items():
            try:
                validate_service_name(service)
            except BadInput as err:
                raise ManifestError(f"{where}: images: {err.message}") from None
            if not isinstance(ref, str):
                raise ManifestError(f"{where}: images.{service}: expected a string, got {type(ref).__name__}")
            try:
                images[service] = ImageRef.parse_pinned(ref)
            except ImageRefError as err:
                raise ManifestError(f"{where}: images.{service}: {err.message}", hint=err.hint) from None
        extras = {}
        for key in _OPTIONAL_TEXT:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ManifestError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
            extras[key] = value
        rollback = Rollback.from_dict(data["rollback"], where) if data.get("rollback") is not None else None
        verified = _per_service(data, "verified", "verification", images, where, Verification.from_dict)
        facts = _per_service(data, "imageConfig", "{user, commit}", images, where, ImageFacts.from_dict)
        raw_changelog = data.get("changelog") or {}
        if not isinstance(raw_changelog, dict) or set(raw_changelog) - set(images):
            raise ManifestError(f"{where}: 'changelog' must be an object of service (of this release) -> changes")
        changelog = {s: ChangeSummary.from_dict(c, f"{where}: changelog.{s}") for s, c in raw_changelog.items()}
        override = Override.from_dict(data["override"], where) if data.get("override") is not None else None
        return cls(images=images, rollback=rollback, verified=verified, changelog=changelog, override=override,
                   image_config=facts, **extras)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": self.schema, "images": {k: str(v) for k, v in sorted(self.images.items())}}
        for key in _OPTIONAL_TEXT:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.rollback is not None:
            data["rollback"] = self.rollback.to_dict()
        if self.verified:
            data["verified"] = {s: v.to_dict() for s, v in sorted(self.verified.items())}
        if self.changelog:
            data["changelog"] = {s: c.to_dict() for s, c in sorted(self.changelog.items())}
        if self.override is not None:
            data["override"] = self.override.to_dict()
        if self.image_config:
            data["imageConfig"] = {s: f.to_dict() for s, f in sorted(self.image_config.items())}
        return data

    def commits(self) -> dict[str, str]:
        """service -> the commit its image records (its revision label), else what the trust gate proved."""
        found = {s: v.commit for s, v in self.verified.items() if v.commit}
        found.update({s: f.commit for s, f in self.image_config.items() if f.commit})
        return dict(sorted(found.items()))

    def to_json(self) -> str:
        """Deterministic JSON: the same release always serializes to the same text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def image_strings(self) -> dict[str, str]:
        return {service: str(ref) for service, ref in sorted(self.images.items())}


def _per_service(data: Mapping[str, Any], key: str, entries: str, images: Mapping[str, Any], where: str,
                 parse: Any) -> dict[str, Any]:
    """`data[key]`: service (an image of this release) -> an entry `parse` reads; {} when absent."""
    raw = data.get(key) or {}
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: '{key}' must be an object of service -> {entries}")
    found = {}
    for service, entry in raw.items():
        if service not in images:
            raise ManifestError(f"{where}: {key}.{service}: no such image in this release")
        found[service] = parse(entry, f"{where}: {key}.{service}")
    return found
