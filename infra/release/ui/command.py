"""`dockyard ui`: serve the dashboard on loopback (another address only behind a printed token),
or write it as static files with `--export DIR`."""

from __future__ import annotations

import errno
import ipaddress
import secrets
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import BadInput
from dockyard.release.commands.branches import parse_duration
from dockyard.release.context import Context
from dockyard.release.insights.report import DEFAULT_SINCE, period

DEFAULT_PORT = 8765
DEFAULT_IDLE_FOR = "7d"


@dataclass
class Served:
    url: str
    host: str
    port: int
    token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "host": self.host, "port": self.port, "token": self.token}

    def lines(self) -> list[str]:
        lines = [f"dockyard ui: {self.url}"]
        if self.token:
            lines.append("The address carries a token: share it only with people who may see every release.")
        return lines + ["Read-only; it follows the release stores live. Ctrl-C stops it."]


@dataclass
class Exported:
    directory: Path
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"export": str(self.directory), "files": self.files}

    def lines(self) -> list[str]:
        return [f"Wrote the dashboard to {self.directory} ({len(self.files)} files); open "
                f"{self.directory / 'index.html'}"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket; a port in use or a foreign address is bad input (exit 2)."""
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port}: expected 1-65535 (0: any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise BadInput(f"--host {host}: {err.strerror}", hint="an address of this machine, e.g. 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise BadInput(f"port {port} on {host} is in use",
                           hint="pick another with --port N (--port 0 takes any free one)") from None
        raise BadInput(f"--host {host}: cannot listen there ({err.strerror})",
                       hint="an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    sock.listen(128)
    return sock


def dashboards_for(ctx: Context, idle_for: str, since: str = DEFAULT_SINCE) -> Any:
    from dockyard.release.ui.engine_reads import EngineReads
    from dockyard.release.ui.service import Dashboards

    idle, _ = parse_duration(idle_for), period(since)  # both checked before anything is read or served
    return Dashboards(ctx, EngineReads(ctx), idle_for=idle, idle_text=idle_for, since_text=since)


def export(ctx: Context, directory: Path, *, idle_for: str = DEFAULT_IDLE_FOR, since: str = DEFAULT_SINCE) -> Exported:
    """The same pages, rendered once, with the static files beside them: a CI artefact or a wiki page."""
    from dockyard.release.ui import views
    from dockyard.release.ui.model import to_json

    if directory.exists() and not directory.is_dir():
        raise BadInput(f"--export {directory}: is a file", hint="name a directory (it is created if missing)")
    dashboards = dashboards_for(ctx, idle_for, since)
    dashboards.engine.refresh()  # once, before writing: an export does not wait for a second look
    dashboard = dashboards.current()
    written = []
    (directory / "api").mkdir(parents=True, exist_ok=True)
    for page in views.PAGES:
        (directory / f"{page}.html").write_text(views.render(page, dashboard, live=False))
        written.append(f"{page}.html")
    import json

    (directory / "api" / "state.json").write_text(json.dumps(to_json(dashboard), indent=1, sort_keys=True) + "\n")
    written.append("api/state.json")
    for item in sorted(views.STATIC.iterdir()):
        (directory / "static").mkdir(exist_ok=True)
        shutil.copyfile(item, directory / "static" / item.name)
        written.append(f"static/{item.name}")
    return Exported(directory=directory, files=written)


def serve(ctx: Context, *, host: str, port: int, idle_for: str = DEFAULT_IDLE_FOR, since: str = DEFAULT_SINCE,
          announce: Callable[[Served], None]) -> None:
    """Serve until interrupted. Validates everything (and binds the port) before announcing the address."""
    import uvicorn

    from dockyard.release.ui.web import LOOPBACK_HOSTS, create_app

    dashboards = dashboards_for(ctx, idle_for, since)
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    loopback = is_loopback(host)
    token = None if loopback else secrets.token_urlsafe(24)
    app = create_app(dashboards, token=token, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    url = f"http://{_url_host(host)}:{bound}/" + (f"?token={token}" if token else "")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    dashboards.engine.start()
    announce(Served(url=url, host=host, port=bound, token=token))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stopped cleanly, then passed Ctrl-C on: stopping is what was asked, so exit 0
    finally:
        dashboards.engine.stop()
        sock.close()
