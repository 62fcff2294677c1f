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
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.config.notify import MAX_WAIT, NotifySettings, Webhook


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


class _Lane:
    """One webhook's queue and sender thread: its events go out in order, whatever the other webhooks do."""

    def __init__(self, notifier: Notifier, hook: Webhook) -> None:
        self.queue: queue.Queue[tuple[NotifySettings, Event] | None] = queue.Queue()
        self.need = 0.0  # seconds the queued events may take at worst
        self.thread = threading.Thread(target=notifier._drain, args=(hook, self.queue), name="dockyard-notify",
                                       daemon=True)
        self.thread.start()


class Notifier:
    """Background senders, one per webhook. `send` never blocks; `close` waits at most a bounded time."""

    def __init__(self, log: Callable[[str], None], *, sender: Callable[..., tuple[bool, str]] = post) -> None:
        self.log = log
        self.sender = sender
        self.deliveries: list[Delivery] = []
        self._lanes: dict[Webhook, _Lane] = {}
        self._lock = threading.Lock()

    def send(self, settings: NotifySettings | None, event: Event) -> int:
        """Queue `event` for every webhook of `settings` that wants it; returns how many were queued."""
        if settings is None:
            return 0
        queued = 0
        for hook in settings.webhooks:
            if event.kind not in hook.events:
                continue
            with self._lock:
                lane = self._lanes.get(hook)
                if lane is None:
                    lane = self._lanes[hook] = _Lane(self, hook)
                lane.need += settings.wait
            lane.queue.put((settings, event))
            queued += 1
        return queued

    def _drain(self, hook: Webhook, lane: queue.Queue[tuple[NotifySettings, Event] | None]) -> None:
        while True:
            item = lane.get()
            if item is None:
                return
            settings, event = item
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
            with self._lock:
                self.deliveries.append(delivery)
            if not ok:
                self.log(f"warning: notify {delivery.webhook}: {event.kind} event for {event.env} not delivered: "
                         f"{detail}")

    def close(self, wait: float | None = None) -> int:
        """Let queued events go out for at most `wait` seconds (default: what the slowest webhook's queue
        needs, capped at MAX_WAIT); returns how many were left undelivered."""
        with self._lock:
            lanes, self._lanes = list(self._lanes.values()), {}
        if not lanes:
            return 0
        bound = min(MAX_WAIT, max(lane.need for lane in lanes)) if wait is None else wait
        deadline = time.monotonic() + bound
        for lane in lanes:
            lane.queue.put(None)
        for lane in lanes:
            lane.thread.join(max(deadline - time.monotonic(), 0))
        # Those behind the one in flight; the stop marker stands for the one in flight.
        pending = sum(lane.queue.qsize() for lane in lanes if lane.thread.is_alive())
        if pending:
            self.log(f"warning: notify: stopped waiting after {bound:.0f}s for {pending} event delivery(ies); "
                     "the command's outcome stands")
        return pending
