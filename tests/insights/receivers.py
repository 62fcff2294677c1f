"""Real HTTP webhook receivers on 127.0.0.1: one that records, one that answers 500, one that is slow."""

from __future__ import annotations

import json
import socket
import time

from tests.support.loopback import Loopback, QuietHandler


class Receiver:
    def __init__(self, *, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.received: list[dict] = []
        self.attempts = 0
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                receiver.attempts += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.status < 300:
                    receiver.received.append(json.loads(body))
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

        self.loopback = Loopback(Handler)
        self.url = f"{self.loopback.base}/hook/secret-token"

    def stop(self) -> None:
        self.loopback.stop()


def down_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
