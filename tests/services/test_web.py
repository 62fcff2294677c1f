"""The web service, started on loopback and requested over HTTP."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[2] / "images" / "web"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"web_{name}", WEB_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def web(monkeypatch):
    monkeypatch.setenv("COMMIT_SHA", "3f2c9a1")
    server = load("app").make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_healthz_answers_ok(web):
    assert get(f"{web}/healthz") == (200, {"status": "ok"})


def test_version_reports_the_build_commit(web):
    assert get(f"{web}/version") == (200, {"service": "web", "commit": "3f2c9a1"})


def test_unknown_path_is_404(web):
    status, body = get(f"{web}/nope?x=1")
    assert status == 404 and body["error"] == "no route for /nope"


def test_container_healthcheck_script_follows_the_server(web):
    port = web.rsplit(":", 1)[1]
    script = str(WEB_DIR / "healthcheck.py")
    ok = subprocess.run([sys.executable, script], env={"PORT": port}, timeout=10)
    assert ok.returncode == 0
    down = subprocess.run([sys.executable, script], env={"PORT": "1"}, timeout=10)
    assert down.returncode == 1
