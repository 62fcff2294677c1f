"""The one error hierarchy: every expected failure carries its exit code and JSON code."""

from __future__ import annotations


class DockyardError(Exception):
    """A failure the user can act on: a message, an optional hint, an exit code."""

    exit_code = 1
    code = "failed"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class BadInput(DockyardError):
    """Wrong configuration, arguments or data: exit 2."""

    exit_code = 2
    code = "bad-input"


class Conflict(DockyardError):
    """Someone else holds the stack, or the release changed under us: exit 3."""

    exit_code = 3
    code = "conflict"


class ConfigError(BadInput):
    """A `dockyard:` configuration value is missing or invalid."""


class ImageRefError(BadInput):
    """An image reference is malformed or not pinned by digest."""


class ManifestError(BadInput):
    """A release manifest is not valid JSON of the documented schema."""
