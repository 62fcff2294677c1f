"""A webhook receiver on 127.0.0.1 for the demo: it records every event dockyard sends it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Heard:
    """What the receiver got, in order: (event, env, text)."""

    events: list[tuple[str, str, str]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, str]]:
        return [{"event": e, "env": env, "text": text} for e, env, text in self.events]

    def lines(self) -> list[str]:
        if not self.events:
            return ["the receiver heard nothing"]
        return [f"{env}: {event}: {text}" for event, env, text in self.events]


class LoopbackReceiver:
    def __init__(self) -> None:
        self.heard = Heard()
        heard = self.heard

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                heard.events.append((str(body.get("event")), str(body.get("env")), str(body.get("text"))[:160]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dockyard"
        threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True).start()

    def subscribe(self, config_files: list[Path]) -> None:
        """Point each stack's `dockyard:notify` at this receiver (generic JSON, every event)."""
        for path in config_files:
            data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
            data.setdefault("config", {})["dockyard:notify"] = {"webhooks": [{"url": self.url}], "timeout": 2}
            path.write_text(yaml.safe_dump(data, sort_keys=False))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def finale(self, story: Any, ctx: Any) -> dict[str, Any]:
        """The demo's last steps: prod's delivery metrics, then what this receiver heard; then stop it."""
        from dockyard.release.insights.hooks import flush
        from dockyard.release.insights.report import metrics

        figures = story.step("Delivery metrics of prod (DORA's four figures)", lambda: metrics(ctx, ["prod"], "30d"))
        flush(ctx)  # the last events out before reading what arrived
        heard = story.step(f"What the webhook receiver on {self.url} heard", lambda: self.heard)
        self.stop()
        return {"metrics": figures.to_json(), "notifications": heard.to_json()}
