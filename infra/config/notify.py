"""`dockyard:notify`: the webhooks an environment tells about promotions, failed verifications, rollbacks,
aborts and holds; how long each attempt may take and how often it is retried. Pure: validated here,
delivered by the command (infra/release/insights/notify.py).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ConfigError
from dockyard.validation import fail, known_keys

EVENTS = ("promote", "verification-failed", "automatic-rollback", "rollback", "abort", "hold", "hold-released")
FORMATS = ("json", "slack")
NOTIFY_KEYS = ("webhooks", "timeout", "retries")
WEBHOOK_KEYS = ("url", "urlEnv", "format", "events")
MAX_WAIT = 10.0  # the longest a command's exit waits for undelivered events
_ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class Webhook:
    format: str  # "json" or "slack"
    events: tuple[str, ...]
    url: str | None = None
    url_env: str | None = None  # the URL is in this environment variable (a CI secret), not in the stack file

    def resolve(self) -> str | None:
        return self.url or (os.environ.get(self.url_env) if self.url_env else None) or None

    def describe(self) -> str:
        """Where it goes, without the path (a Slack webhook's path is its secret)."""
        url = self.resolve()
        if not url:
            return f"${self.url_env}"
        return urllib.parse.urlsplit(url).netloc or url[:20]


@dataclass(frozen=True)
class NotifySettings:
    webhooks: tuple[Webhook, ...]
    timeout: float = 5.0  # seconds per attempt
    retries: int = 2  # attempts after the first, on connection errors, 429 and 5xx

    @property
    def wait(self) -> float:
        """How long the end of a command may wait for one webhook: every attempt timing out, plus backoff."""
        return min(MAX_WAIT, (self.retries + 1) * self.timeout + _backoff_total(self.retries) + 0.5)


def _backoff_total(retries: int) -> float:
    return sum(min(0.2 * 2 ** i, 2.0) for i in range(retries))


def parse_notify(value: Any, *, is_secret: bool = False) -> NotifySettings | None:
    """`dockyard:notify` (JSON-decoded), or a ConfigError naming the key path. None: not set."""
    if value is None:
        return None
    if is_secret:
        raise ConfigError("dockyard:notify: holds an encrypted value, which the dockyard command cannot read; "
                          "keep the webhook URL in an environment variable and name it with urlEnv")
    if not isinstance(value, Mapping):
        raise fail("notify", value, "an object of webhooks, timeout, retries")
    known_keys("notify", value, NOTIFY_KEYS)
    timeout = value.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0.1 <= timeout <= 60:
        raise fail("notify.timeout", timeout, "seconds per attempt, from 0.1 to 60")
    retries = value.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise fail("notify.retries", retries, "a whole number from 0 to 5")
    raw = value.get("webhooks")
    if not isinstance(raw, list) or not raw:
        raise fail("notify.webhooks", raw, "a non-empty list of webhooks ({url or urlEnv, format, events})")
    return NotifySettings(webhooks=tuple(_webhook(f"notify.webhooks[{i}]", w) for i, w in enumerate(raw)),
                          timeout=float(timeout), retries=retries)


def _webhook(path: str, raw: Any) -> Webhook:
    if not isinstance(raw, Mapping):
        raise fail(path, raw, "an object of url or urlEnv, format, events")
    known_keys(f"{path}", raw, WEBHOOK_KEYS)
    url, url_env = raw.get("url"), raw.get("urlEnv")
    if (url is None) == (url_env is None):
        raise ConfigError(f"dockyard:{path}: expected url or urlEnv (one of them)")
    if url is not None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise fail(f"{path}.url", url, "an http(s) URL")
    if url_env is not None and (not isinstance(url_env, str) or not url_env or set(url_env) - _ENV_NAME_CHARS):
        raise fail(f"{path}.urlEnv", url_env, "the name of an environment variable holding the URL")
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise fail(f"{path}.format", fmt, "one of " + ", ".join(FORMATS))
    events = raw.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise fail(f"{path}.events", events, "a list of " + ", ".join(EVENTS))
    return Webhook(format=fmt, events=tuple(events), url=url, url_env=url_env)


