"""web: a small HTTP service. GET /healthz for health checks, GET /version for the build commit."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "web"


class Handler(BaseHTTPRequestHandler):
    server_version = "dockyard-web"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's handler naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(200, {"status": "ok"})
        elif path == "/version":
            self._json(200, {"service": SERVICE, "commit": os.environ.get("COMMIT_SHA", "unknown")})
        elif path == "/":
            self._json(200, {"service": SERVICE, "message": "hello from dockyard"})
        else:
            self._json(404, {"error": f"no route for {path}"})

    def _json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(json.dumps({"service": SERVICE, "request": fmt % args}) + "\n")


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    server = make_server(os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))
    # ECS and Kubernetes stop containers with SIGTERM: finish in-flight requests, then exit.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(json.dumps({"service": SERVICE, "listening": server.server_address[1]}), flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
