"""Notifications to real HTTP receivers on loopback: delivered, retried, reported, and never in the way."""

from __future__ import annotations

import time

import pytest

from dockyard.errors import ConfigError
from dockyard.config.notify import parse_notify
from dockyard.release.insights.notify import Event, Notifier
from tests.insights.receivers import Receiver, down_url

EVENT = Event(kind="promote", env="prod", text="dev:v3 -> prod: release 7 (deployed and verified)",
              at="2026-11-23T10:00:00Z", by="alice", fields={"version": 7, "from": "dev"})


@pytest.fixture()
def receivers():
    started = []

    def make(**kwargs) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield make
    for r in started:
        r.stop()


def settings(*hooks: dict, timeout: float = 1.0, retries: int = 2):
    return parse_notify({"webhooks": list(hooks), "timeout": timeout, "retries": retries})


def test_json_and_slack_payloads_arrive(receivers):
    plain, slack = receivers(), receivers()
    logs: list[str] = []
    notifier = Notifier(logs.append)
    notifier.send(settings({"url": plain.url}, {"url": slack.url, "format": "slack"}), EVENT)
    assert notifier.close() == 0 and logs == []
    assert plain.received == [{"event": "promote", "env": "prod", "text": EVENT.text, "at": EVENT.at, "by": "alice",
                               "version": 7, "from": "dev"}]
    assert slack.received == [{"text": f"*dockyard* `prod` promote: {EVENT.text}"}]


def test_a_receiver_answering_500_is_retried_then_reported_in_one_line(receivers):
    failing = receivers(status=500)
    logs: list[str] = []
    notifier = Notifier(logs.append)
    notifier.send(settings({"url": failing.url}, retries=2), EVENT)
    notifier.close()
    assert failing.attempts == 3
    assert len(logs) == 1 and "answered 500 after 3 attempts" in logs[0]
    assert "secret-token" not in logs[0]  # a webhook's path is its credential: never printed
    assert notifier.deliveries[0].ok is False


def test_a_down_receiver_is_reported_and_the_others_still_get_the_event(receivers):
    good = receivers()
    logs: list[str] = []
    notifier = Notifier(logs.append)
    notifier.send(settings({"url": down_url()}, {"url": good.url}, retries=1), EVENT)
    notifier.close()
    assert len(good.received) == 1
    assert len(logs) == 1 and "unreachable after 2 attempts (connection refused)" in logs[0]


def test_sending_never_waits_for_a_slow_receiver_and_closing_is_bounded(receivers):
    slow = receivers(delay=3.0)
    logs: list[str] = []
    notifier = Notifier(logs.append)
    started = time.monotonic()
    notifier.send(settings({"url": slow.url}, timeout=0.5, retries=0), EVENT)
    assert time.monotonic() - started < 0.05  # queued, not sent, when send returns
    notifier.close()
    assert time.monotonic() - started < 2.0  # one 0.5 s attempt, not the receiver's 3 s
    assert "timed out" in logs[0]


def test_close_gives_up_after_its_bound_and_says_so(receivers):
    slow = receivers(delay=2.0)
    logs: list[str] = []
    notifier = Notifier(logs.append)
    notifier.send(settings({"url": slow.url}, timeout=5, retries=0), EVENT)
    started = time.monotonic()
    assert notifier.close(wait=0.3) >= 1
    assert time.monotonic() - started < 1.0 and "stopped waiting" in logs[-1]


def test_events_go_only_where_wanted_and_url_from_the_environment(receivers, monkeypatch):
    hook = receivers()
    monkeypatch.setenv("SHOP_WEBHOOK", hook.url)
    notifier = Notifier(lambda _: None)
    config = settings({"urlEnv": "SHOP_WEBHOOK", "events": ["automatic-rollback"]})
    assert notifier.send(config, EVENT) == 0
    assert notifier.send(config, Event("automatic-rollback", "prod", "rolled back", EVENT.at, "alice")) == 1
    notifier.close()
    assert [r["event"] for r in hook.received] == ["automatic-rollback"]
    monkeypatch.delenv("SHOP_WEBHOOK")
    logs: list[str] = []
    unset = Notifier(logs.append)
    unset.send(config, Event("automatic-rollback", "prod", "rolled back", EVENT.at, "alice"))
    unset.close()
    assert "$SHOP_WEBHOOK is not set" in logs[0]


@pytest.mark.parametrize("value, message", [
    ({"webhooks": []}, "dockyard:notify.webhooks: got []; expected a non-empty list"),
    ({"webhooks": [{"url": "ftp://x"}]}, "dockyard:notify.webhooks[0].url: got 'ftp://x'; expected an http(s) URL"),
    ({"webhooks": [{"url": "http://x", "format": "teams"}]}, "dockyard:notify.webhooks[0].format: got 'teams'"),
    ({"webhooks": [{"url": "http://x", "events": ["deploy"]}]}, "dockyard:notify.webhooks[0].events: got ['deploy']"),
    ({"webhooks": [{"url": "http://x", "urlEnv": "X"}]}, "dockyard:notify.webhooks[0]: expected url or urlEnv"),
    ({"webhooks": [{"url": "http://x"}], "timeout": 0}, "dockyard:notify.timeout: got 0"),
    ({"webhooks": [{"url": "http://x"}], "retries": 9}, "dockyard:notify.retries: got 9"),
    ({"webhooks": [{"url": "http://x"}], "channel": "#ops"}, "dockyard:notify.channel is not a setting here"),
])
def test_bad_notify_settings_fail_in_one_line(value, message):
    with pytest.raises(ConfigError) as caught:
        parse_notify(value)
    assert message in caught.value.message


def test_an_encrypted_notify_value_is_refused_with_the_way_out():
    with pytest.raises(ConfigError) as caught:
        parse_notify({"webhooks": [{"url": "[secret]"}]}, is_secret=True)
    assert "urlEnv" in caught.value.message
