"""`dockyard ui` through its entry point: export, bad flags, and a real process serving with a token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.ui.test_server import get

ROOT = Path(__file__).resolve().parents[2]


def test_export_writes_the_same_pages_as_static_files_that_do_not_poll(told, tmp_path):
    target = tmp_path / "site"
    out = json.loads(told.ok("ui", "--export", str(target), "--json"))
    assert out["export"] == str(target.resolve())
    for page in ("index.html", "history.html", "branches.html", "metrics.html", "static/dashboard.css",
                 "static/dashboard.js", "api/state.json"):
        assert page in out["files"] and (target / page).is_file(), page
    index = (target / "index.html").read_text()
    assert 'data-live="off"' in index and 'id="stage-prod"' in index
    state = json.loads((target / "api" / "state.json").read_text())
    assert [e["version"] for e in state["environments"]] == [4, 3]


def test_bad_flags_are_one_line_and_exit_2(told, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    code, _, err = told("ui", "--export", str(a_file))
    assert code == 2 and "is a file" in err and "Traceback" not in err
    code, _, err = told("ui", "--port", "70000")
    assert code == 2 and "--port 70000" in err
    code, _, err = told("ui", "--idle-for", "soon")
    assert code == 2 and "--idle-for 'soon'" in err
    code, _, err = told("ui", "--host", "192.0.2.123", "--port", "0")  # TEST-NET: no address of this machine
    assert code == 2 and "cannot listen there" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        code, _, err = told("ui", "--port", str(taken.getsockname()[1]), "--json")
        assert code == 2 and "is in use" in err and "--port 0" in err


def test_a_dockyard_ui_process_on_another_address_serves_only_behind_the_token_it_prints(told):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "dockyard.release.cli", "ui", "--host", "0.0.0.0", "--port", "0",
                                "--project-dir", str(told.project.dir), "--json"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        served = json.loads(process.stdout.readline())
        assert served["host"] == "0.0.0.0" and len(served["token"]) >= 24
        assert served["url"] == f"http://0.0.0.0:{served['port']}/?token={served['token']}"
        base = f"http://127.0.0.1:{served['port']}/"
        deadline = time.monotonic() + 10
        while get(base + "api/version.json")[0] != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert get(base + "index.html")[0] == 401
        status, headers, _ = get(base + f"?token={served['token']}")
        assert status == 303
        cookie = headers["set-cookie"].split(";", 1)[0]
        status, _, body = get(base + "index.html", headers={"Cookie": cookie})
        assert status == 200 and b'id="stage-prod"' in body
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0, process.stderr.read()
