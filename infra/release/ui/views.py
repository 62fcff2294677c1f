"""The dashboard's pages, rendered with Jinja2 from a Dashboard: the same HTML served live and exported."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from dockyard.release.ui import charts
from dockyard.release.ui.model import Dashboard

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# page -> (file name, title in the navigation)
PAGES = {"index": "Pipeline", "history": "History", "branches": "Branch previews", "metrics": "Delivery metrics"}


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["percent"] = lambda v: "-" if v is None else f"{v:.0%}"  # as `dockyard metrics` writes it
    env.filters["commit"] = lambda c: (c or "")[:12] or "-"
    env.filters["css"] = lambda text: "".join(ch if ch.isalnum() else "-" for ch in str(text))
    env.globals["charts"] = charts
    return env


def render(page: str, dashboard: Dashboard, *, live: bool) -> str:
    if page not in PAGES:
        raise KeyError(page)
    template = _environment().get_template(f"{page}.html")
    return template.render(d=dashboard, page=page, pages=PAGES, title=PAGES[page], live=live)
