"""Shared fixtures: the project root and a clean environment for Pulumi's config."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Config must come from the test, never from a shell that ran `pulumi up`.
    for name in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "DOCKYARD_COMMIT", "GITHUB_SHA", "DOCKYARD_FAULT"):
        monkeypatch.delenv(name, raising=False)
    # moto intercepts AWS calls in-process: an endpoint or profile from the shell must not redirect them.
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
