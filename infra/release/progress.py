"""Long steps for people: one line when a step starts, a heartbeat while it runs, its log in a file."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from dockyard.errors import DockyardError

HEARTBEAT_SECONDS = 20.0


@contextmanager
def heartbeat(log: Callable[[str], None], what: str, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """While the body runs, say every `every` seconds that `what` is still going, and for how long."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            log(f"    ... {what}: {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_logged(log: Callable[[str], None], message: str, log_file: Path, command: Sequence[str], *,
               cwd: Path, env: Mapping[str, str] | None = None, every: float = HEARTBEAT_SECONDS) -> str:
    """Run `command` with its output appended to `log_file`; return that output.

    A failure is one error naming the command's last meaningful line and the log file.
    """
    log(message)
    with log_file.open("a") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        start = sink.tell()
        with heartbeat(log, message.strip().split(":")[0], every):
            done = subprocess.run(list(command), cwd=cwd, env=dict(env) if env is not None else None,
                                  stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    with log_file.open() as source:
        source.seek(start)
        output = source.read()
    if done.returncode != 0:
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise DockyardError(f"{Path(command[0]).name} {command[1]} failed: {last[:300]}",
                            hint=f"the whole log is in {log_file}")
    return output
