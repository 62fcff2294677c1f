"""`dockyard:notify`: tell webhooks what happened (promote, failed verification, automatic rollback, abort,
hold, hold released), Slack-compatible or as generic JSON, with retries and a timeout.

Sending never stands in the way of a release: events go onto a queue that one background thread
drains, so `send` returns at once and a rollback that follows a failed verification starts without
waiting for any receiver. The command waits for that thread only at its very end, and only for a
bounded time; a receiver that is down, slow or answers an error costs one line on stderr, never
the exit code. urllib3 (already installed with boto3) carries the retries, backoff and timeouts.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.errors import ConfigError

EVENTS = ("promote", "verification-failed", "automatic-rollback", "rollback", "abort", "hold", "hold-released")
FORMATS = ("json", "slack")
NOTIFY_KEYS = ("webhooks", "timeout", "retries")
WEBHOOK_KEYS = ("url", "urlEnv", "format", "events")
MAX_WAIT = 30.0  # the longest a command's exit waits for undelivered events
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


@dataclass(frozen=True)
class Event:
    kind: str  # one of EVENTS
    env: str
    text: str  # one line a person reads
    at: str
    by: str
    fields: Mapping[str, Any] = field(default_factory=dict)  # version, from, images, changelog, window, ...

    def payload(self, fmt: str) -> dict[str, Any]:
        if fmt == "slack":
            # An incoming webhook's minimal message; Mattermost, Rocket.Chat and Discord's /slack accept it too.
            return {"text": f"*dockyard* `{self.env}` {self.kind}: {self.text}"}
        return {"event": self.kind, "env": self.env, "text": self.text, "at": self.at, "by": self.by,
                **dict(self.fields)}


# ----------------------------------------------------------------------------- settings


def _fail(path: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"dockyard:{path}: got {value!r}; expected {expected}")


def parse_notify(value: Any, *, is_secret: bool = False) -> NotifySettings | None:
    """`dockyard:notify` (JSON-decoded), or a ConfigError naming the key path. None: not set."""
    if value is None:
        return None
    if is_secret:
        raise ConfigError("dockyard:notify: holds an encrypted value, which the dockyard command cannot read; "
                          "keep the webhook URL in an environment variable and name it with urlEnv")
    if not isinstance(value, Mapping):
        raise _fail("notify", value, "an object of webhooks, timeout, retries")
    for key in value:
        if key not in NOTIFY_KEYS:
            raise ConfigError(f"dockyard:notify.{key} is not a setting here; known keys: {', '.join(NOTIFY_KEYS)}")
    timeout = value.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0.1 <= timeout <= 60:
        raise _fail("notify.timeout", timeout, "seconds per attempt, from 0.1 to 60")
    retries = value.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise _fail("notify.retries", retries, "a whole number from 0 to 5")
    raw = value.get("webhooks")
    if not isinstance(raw, list) or not raw:
        raise _fail("notify.webhooks", raw, "a non-empty list of webhooks ({url or urlEnv, format, events})")
    return NotifySettings(webhooks=tuple(_webhook(f"notify.webhooks[{i}]", w) for i, w in enumerate(raw)),
                          timeout=float(timeout), retries=retries)


def _webhook(path: str, raw: Any) -> Webhook:
    if not isinstance(raw, Mapping):
        raise _fail(path, raw, "an object of url or urlEnv, format, events")
    for key in raw:
        if key not in WEBHOOK_KEYS:
            raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(WEBHOOK_KEYS)}")
    url, url_env = raw.get("url"), raw.get("urlEnv")
    if (url is None) == (url_env is None):
        raise ConfigError(f"dockyard:{path}: expected url or urlEnv (one of them)")
    if url is not None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail(f"{path}.url", url, "an http(s) URL")
    if url_env is not None and (not isinstance(url_env, str) or not url_env or set(url_env) - _ENV_NAME_CHARS):
        raise _fail(f"{path}.urlEnv", url_env, "the name of an environment variable holding the URL")
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise _fail(f"{path}.format", fmt, "one of " + ", ".join(FORMATS))
    events = raw.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise _fail(f"{path}.events", events, "a list of " + ", ".join(EVENTS))
    return Webhook(format=fmt, events=tuple(events), url=url, url_env=url_env)


# ----------------------------------------------------------------------------- delivery


@dataclass
class Delivery:
    """What became of one event at one webhook."""

    webhook: str
    event: str
    ok: bool
    detail: str  # "200", "answered 500 after 3 attempts", "unreachable (Connection refused)"
    seconds: float


def post(url: str, payload: Mapping[str, Any], *, timeout: float, retries: int) -> tuple[bool, str]:
    """POST `payload` as JSON; retry connection errors, 429 and 5xx with backoff. Never raises."""
    import urllib3

    retry = urllib3.Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                          backoff_factor=0.2, backoff_max=2.0, status_forcelist=(429, 500, 502, 503, 504),
                          allowed_methods=None, raise_on_status=False, respect_retry_after_header=False)
    pool = urllib3.PoolManager(retries=retry, timeout=urllib3.Timeout(total=timeout))
    try:
        response = pool.request("POST", url, body=json.dumps(payload).encode(),
                                headers={"Content-Type": "application/json", "User-Agent": "dockyard"})
    except urllib3.exceptions.MaxRetryError as err:
        reason = err.reason
        if isinstance(reason, urllib3.exceptions.ResponseError):
            return False, f"kept answering an error after {retries + 1} attempts"
        return False, f"unreachable after {retries + 1} attempts ({_reason(reason)})"
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
        return False, f"failed ({_reason(err)})"
    finally:
        pool.clear()
    if 200 <= response.status < 300:
        return True, str(response.status)
    attempts = len(response.retries.history) + 1 if response.retries else 1
    return False, f"answered {response.status} after {attempts} attempt{'s' if attempts > 1 else ''}"


def _reason(err: object) -> str:
    text = str(err)
    if "timed out" in text.lower() or "timeout" in type(err).__name__.lower():
        return "timed out"
    if "refused" in text.lower():
        return "connection refused"
    return text.split(": ", 1)[-1][:120]


class Notifier:
    """One background sender per command. `send` never blocks; `close` waits at most a bounded time."""

    def __init__(self, log: Callable[[str], None], *, sender: Callable[..., tuple[bool, str]] = post) -> None:
        self.log = log
        self.sender = sender
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[NotifySettings, Webhook, Event] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._wait = 0.0
        self._lock = threading.Lock()

    def send(self, settings: NotifySettings | None, event: Event) -> int:
        """Queue `event` for every webhook of `settings` that wants it; returns how many were queued."""
        if settings is None:
            return 0
        queued = 0
        for hook in settings.webhooks:
            if event.kind in hook.events:
                self._queue.put((settings, hook, event))
                self._wait += settings.wait
                queued += 1
        if queued:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._drain, name="dockyard-notify", daemon=True)
                    self._thread.start()
        return queued

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            settings, hook, event = item
            started = time.monotonic()
            url = hook.resolve()
            if not url:
                ok, detail = False, f"not sent: ${hook.url_env} is not set"
            else:
                try:
                    ok, detail = self.sender(url, event.payload(hook.format), timeout=settings.timeout,
                                             retries=settings.retries)
                except Exception as err:  # noqa: BLE001 - a receiver never fails the command
                    ok, detail = False, f"failed ({type(err).__name__}: {err})"
            delivery = Delivery(webhook=hook.describe(), event=event.kind, ok=ok, detail=detail,
                                seconds=time.monotonic() - started)
            self.deliveries.append(delivery)
            if not ok:
                self.log(f"warning: notify {delivery.webhook}: {event.kind} event for {event.env} not delivered: "
                         f"{detail}")

    def close(self, wait: float | None = None) -> int:
        """Let queued events go out for at most `wait` seconds (default: what the queued webhooks need,
        capped at MAX_WAIT); returns how many were left undelivered."""
        thread = self._thread
        if thread is None:
            return 0
        self._queue.put(None)
        thread.join(min(MAX_WAIT, self._wait) if wait is None else wait)
        if not thread.is_alive():
            self._thread, self._wait = None, 0.0
            return 0
        pending = self._queue.qsize()  # those behind the one in flight; the stop marker stands for that one
        self.log(f"warning: notify: stopped waiting for {pending} event delivery(ies); the command's outcome stands")
        return pending
