"""A stack lock a killed engine left in a file backend: released only when its holder is dead on this host."""

from __future__ import annotations

import json
import socket
import subprocess

from dockyard.release.recovery.stack_lock import alive, recover


def lock(backend, stack: str, pid: int, host: str | None = None) -> None:
    directory = backend / ".pulumi" / "locks" / "organization" / "dockyard" / stack
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"lock-{pid}.json").write_text(json.dumps({
        "pid": pid, "username": "ci", "hostname": host or socket.gethostname(),
        "timestamp": "2026-12-06T01:00:00Z"}))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_lock_whose_holder_died_here_is_released(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    lock(tmp_path, "prod", dead_pid())
    cancelled, lines = [], []
    released, advice = recover(tmp_path, "prod", lambda: cancelled.append("prod"), lines.append)
    assert released and cancelled == ["prod"] and advice == ""
    assert "no longer runs" in lines[0]


def test_a_live_holder_or_another_host_keeps_the_lock_and_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    holder = subprocess.Popen(["sleep", "30"])
    try:
        lock(tmp_path, "prod", holder.pid)
        lock(tmp_path, "dev", dead_pid(), host="ci-runner-7")
        for stack in ("prod", "dev"):
            cancelled = []
            released, advice = recover(tmp_path, stack, lambda: cancelled.append(stack), lambda _: None)
            assert not released and not cancelled
            assert f"pulumi cancel --stack {stack} --yes" in advice and "held by pid" in advice
        assert "ci-runner-7" in recover(tmp_path, "dev", lambda: None, lambda _: None)[1]
    finally:
        holder.kill()
        holder.wait()


def test_a_backend_whose_locks_cannot_be_read_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://bucket/state")
    released, advice = recover(tmp_path, "prod", lambda: None, lambda _: None)
    assert not released and "pulumi cancel --stack prod --yes" in advice


def test_a_killed_process_not_yet_reaped_is_not_alive():
    proc = subprocess.Popen(["sleep", "30"])
    proc.kill()
    import time

    deadline = time.monotonic() + 5
    while alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(proc.pid)  # a zombie until waited for: it holds nothing
    proc.wait()
