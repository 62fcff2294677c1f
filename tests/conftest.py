"""Shared fixtures: the project root and a clean environment for Pulumi's config."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # The folder infra/ is the package `dockyard` only through an install: an editable install of
    # another checkout would test that checkout's code, and subprocesses would run it too.
    import importlib.util

    spec = importlib.util.find_spec("dockyard")
    where = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if where != PROJECT_DIR / "infra":
        raise pytest.UsageError(f"dockyard is imported from {where or 'nowhere'}, not {PROJECT_DIR / 'infra'}; "
                                f"run `python -m pip install -e '{PROJECT_DIR}[test]'` in this interpreter's venv")


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Config must come from the test, never from a shell that ran `pulumi up`.
    for name in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "DOCKYARD_COMMIT", "GITHUB_SHA", "DOCKYARD_FAULT"):
        monkeypatch.delenv(name, raising=False)
    # moto intercepts AWS calls in-process: an endpoint or profile from the shell must not redirect them.
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def pytest_report_header(config: pytest.Config) -> str | None:
    # Which parts the set-up started, could not run here, or failed to start (tests/support/parts.py).
    from tests.support import parts

    return parts.report_line()
