"""The worker's loop and its heartbeat health signal."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker" / "worker.py"


@pytest.fixture()
def worker(monkeypatch, tmp_path):
    monkeypatch.setenv("HEARTBEAT_FILE", str(tmp_path / "heartbeat"))
    monkeypatch.setenv("WORK_INTERVAL_SECONDS", "0")
    spec = importlib.util.spec_from_file_location("worker_under_test", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loop_beats_and_is_healthy_while_fresh(worker, tmp_path, capsys):
    worker.run(stop_after=3)
    assert '"tick": 2' in capsys.readouterr().out
    beat = float((tmp_path / "heartbeat").read_text())
    assert worker.healthy(tmp_path / "heartbeat", beat + 5, max_age=10)
    assert not worker.healthy(tmp_path / "heartbeat", beat + 11, max_age=10)


def test_missing_or_garbled_heartbeat_is_unhealthy(worker, tmp_path):
    assert not worker.healthy(tmp_path / "absent", 0, max_age=10)
    (tmp_path / "heartbeat").write_text("not a time")
    assert not worker.healthy(tmp_path / "heartbeat", 0, max_age=10)


def test_check_command_exit_codes(tmp_path):
    env = {"HEARTBEAT_FILE": str(tmp_path / "heartbeat"), "WORK_INTERVAL_SECONDS": "10"}
    assert subprocess.run([sys.executable, str(WORKER), "--check"], env=env).returncode == 1
    (tmp_path / "heartbeat").write_text(str(__import__("time").time()))
    assert subprocess.run([sys.executable, str(WORKER), "--check"], env=env).returncode == 0


def test_sigterm_stops_the_loop_at_once_not_after_its_interval(tmp_path):
    import signal
    import time

    env = {"HEARTBEAT_FILE": str(tmp_path / "heartbeat"), "WORK_INTERVAL_SECONDS": "30"}
    proc = subprocess.Popen([sys.executable, str(WORKER)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert '"tick": 0' in proc.stdout.readline()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 2, "SIGTERM waited for the work interval"
    finally:
        proc.kill()
