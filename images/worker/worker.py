"""worker: a background loop. Its health signal is a heartbeat file, checked by `--check`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

SERVICE = "worker"


def heartbeat_path() -> Path:
    return Path(os.environ.get("HEARTBEAT_FILE", "/tmp/worker-heartbeat"))


def interval() -> float:
    return float(os.environ.get("WORK_INTERVAL_SECONDS", "10"))


def beat(path: Path, now: float) -> None:
    # Write then rename: a reader never sees a half-written heartbeat.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(now))
    tmp.replace(path)


def healthy(path: Path, now: float, max_age: float) -> bool:
    """Healthy when the loop beat within `max_age` seconds."""
    try:
        return now - float(path.read_text()) <= max_age
    except (OSError, ValueError):
        return False


def work_once(count: int) -> None:
    print(json.dumps({"service": SERVICE, "tick": count, "commit": os.environ.get("COMMIT_SHA", "unknown")}),
          flush=True)


def run(stop_after: int | None = None) -> None:
    # ECS and Kubernetes stop containers with SIGTERM: end the loop at once, not after the current wait.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    count = 0
    while not stopping.is_set() and (stop_after is None or count < stop_after):
        work_once(count)
        beat(heartbeat_path(), time.time())
        count += 1
        stopping.wait(interval())


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        return 0 if healthy(heartbeat_path(), time.time(), 3 * interval()) else 1
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
