"""The soak gate of `promote --auto`, against the real file store: each condition, in order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockyard.config.spans import duration_setting
from dockyard.errors import ConfigError
from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from dockyard.release.insights import auto
from dockyard.config.windows import parse_windows
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold
from tests.insights.test_metrics import images

VERIFIED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def put(store: FileStore, build: str, at: datetime, *, good: bool = True) -> int:
    current = store.current()
    version = store.append(Release.from_dict({"schema": 1, "images": images(build),
                                              "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}),
                           expected=current.version if current else None).version
    store.label(DEPLOYED, version)
    if good:
        store.label(KNOWN_GOOD, version)
    return version


@pytest.fixture()
def stores(tmp_path):
    dev, prod = FileStore(tmp_path / "dev"), FileStore(tmp_path / "prod")
    put(prod, "one", VERIFIED_AT - timedelta(days=7))
    put(dev, "two", VERIFIED_AT)
    return dev, prod


def gate(dev, prod, now, *, windows=None, soak=timedelta(hours=24)):
    return auto.decide(env="prod", source="dev", soak=soak, target=prod, source_store=dev, windows=windows,
                       services={"web", "worker"}, now=now)


def test_before_the_soak_it_waits_and_says_until_when(stores):
    dev, prod = stores
    g = gate(dev, prod, VERIFIED_AT + timedelta(hours=5))
    assert g.waiting == auto.SOAKING and g.eligible_at == VERIFIED_AT + timedelta(hours=24)
    assert "dev:v1 has run verified for 5h of 1d; eligible at 2026-03-03 09:00 UTC" in g.message


def test_after_the_soak_it_promotes(stores):
    dev, prod = stores
    g = gate(dev, prod, VERIFIED_AT + timedelta(hours=25))
    assert g.waiting is None and g.candidate == 1


def test_a_held_environment_is_never_bumped(stores):
    dev, prod = stores
    prod.set_hold(Hold(version=1, reason="release 2 failed verification; rolled back automatically", by="ci",
                       at="2026-03-02T10:00:00Z"))
    g = gate(dev, prod, VERIFIED_AT + timedelta(days=3))
    assert g.waiting == auto.HELD and "rolled back automatically" in g.message


def test_a_newer_unverified_source_release_waits(stores):
    dev, prod = stores
    put(dev, "three", VERIFIED_AT + timedelta(hours=1), good=False)
    g = gate(dev, prod, VERIFIED_AT + timedelta(days=3))
    assert g.waiting == auto.UNVERIFIED and "newest release v2 has not verified (known-good is v1)" in g.message


def test_a_closed_window_waits_and_the_same_release_is_nothing_to_do(stores):
    dev, prod = stores
    weekend = parse_windows({"deny": [{"name": "weekend", "cron": "0 0 * * 6", "duration": "48h"}]})
    saturday = datetime(2026, 3, 7, 12, tzinfo=timezone.utc)
    g = gate(dev, prod, saturday, windows=weekend)
    assert g.waiting == auto.WINDOW and "closed by weekend; opens 2026-03-09 00:00 UTC" in g.message
    put(prod, "two", VERIFIED_AT + timedelta(hours=30))
    assert gate(dev, prod, saturday + timedelta(days=2)).waiting == auto.SAME


def test_soak_must_be_a_duration():
    assert duration_setting("soak", "2d") == timedelta(days=2)
    with pytest.raises(ConfigError) as caught:
        duration_setting("soak", "a while")
    assert caught.value.message.startswith("dockyard:soak: got 'a while'; expected a duration")
