"""The release manifest: which pinned image each service runs (DESIGN "Release manifest")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.errors import BadInput, ImageRefError, ManifestError
from infra.images import ImageRef
from infra.naming import validate_service_name

SCHEMA = 1
_OPTIONAL_TEXT = ("source", "commit", "by", "reason", "at")
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
        unknown = sorted(set(data) - {"schema", "images", *_OPTIONAL_TEXT})
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
        return cls(images=images, **extras)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": self.schema, "images": {k: str(v) for k, v in sorted(self.images.items())}}
        for key in _OPTIONAL_TEXT:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    def to_json(self) -> str:
        """Deterministic JSON: the same release always serializes to the same text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def image_strings(self) -> dict[str, str]:
        return {service: str(ref) for service, ref in sorted(self.images.items())}
