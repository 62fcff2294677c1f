"""The dashboard as a Starlette application: four pages, two small JSON documents, the static files.

Read-only by construction: every route answers GET (and HEAD) only. Every answer carries a
Content-Security-Policy that allows nothing but this server (no CDN could load even if a page
asked for one), and is refused unless it comes through a Host this server was started for
(loopback) or with the token `dockyard ui` printed (any other address).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from dockyard.release.ui import views
from dockyard.release.ui.model import to_json
from dockyard.release.ui.service import Dashboards

COOKIE = "dockyard_ui_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _host_name(header: str) -> str:
    """The Host header without its port: `127.0.0.1:8765` -> 127.0.0.1, `[::1]:8765` -> ::1."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: the token or an expected Host, and the security headers on every answer."""

    def __init__(self, app: Any, *, token: str | None, allowed_hosts: Iterable[str] | None) -> None:
        self.app, self.token = app, token
        self.allowed = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import MutableHeaders
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, RedirectResponse

        async def guarded_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        request = Request(scope)
        if self.allowed is not None and _host_name(request.headers.get("host", "")) not in self.allowed:
            # A page of another site that resolved its own name to 127.0.0.1 (DNS rebinding) reads nothing.
            await PlainTextResponse("dockyard ui: unexpected Host header\n", 400)(scope, receive, guarded_send)
            return
        if self.token:
            given = request.query_params.get("token")
            if given is not None and _same(given, self.token):
                # The token moves into a cookie and out of the address bar (and out of any history or log).
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
                await response(scope, receive, guarded_send)
                return
            cookie = request.cookies.get(COOKIE)
            if not (cookie and _same(cookie, self.token)):
                await PlainTextResponse("dockyard ui: open the address `dockyard ui` printed (it carries the "
                                        "token)\n", 401)(scope, receive, guarded_send)
                return
        await self.app(scope, receive, guarded_send)


def create_app(dashboards: Dashboards, *, token: str | None = None,
               allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def page(name: str) -> Any:
        def endpoint(_request: Request) -> HTMLResponse:
            return HTMLResponse(views.render(name, dashboards.current(), live=True))
        return endpoint

    def state(_request: Request) -> JSONResponse:
        return JSONResponse(to_json(dashboards.current()))

    def version(_request: Request) -> JSONResponse:
        return JSONResponse({"version": dashboards.version()})

    routes = [Route("/", page("index")), *[Route(f"/{name}.html", page(name)) for name in views.PAGES],
              Route("/api/state.json", state), Route("/api/version.json", version),
              Mount("/static", StaticFiles(directory=views.STATIC), name="static")]
    return Starlette(routes=routes,
                     middleware=[Middleware(Guard, token=token, allowed_hosts=allowed_hosts)])
