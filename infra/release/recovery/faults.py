"""Fault injection for the crash-consistency tests: `DOCKYARD_FAULT=<step>` kills the command at that step.

The kill is a real SIGKILL, no cleanup, no `finally`: to the whole process group when the command
leads one (a test starts it with its own session, so the engine it runs dies with it and leaves its
stack lock, as a killed CI job does), else to the command's own process only.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable

ENV = "DOCKYARD_FAULT"
STEPS = ("after-release-written", "after-tag", "during-up", "after-up-before-label", "during-verify",
         "during-auto-rollback", "during-branch-up", "during-branch-destroy")
# An engine line that says a resource is being changed: the update holds the lock and is under way.
_IN_FLIGHT = re.compile(r"\b(creating|updating|deleting|replacing)\b", re.IGNORECASE)


def armed(step: str) -> bool:
    return os.environ.get(ENV) == step


def at(step: str) -> None:
    """Die here when DOCKYARD_FAULT names this step."""
    if armed(step):
        kill()


def kill() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def engine_step(verb: str, stack: str) -> str:
    from dockyard import naming

    branch = naming.is_branch_stack(stack)
    if verb == "destroy":
        return "during-branch-destroy" if branch else "during-destroy"
    return "during-branch-up" if branch else f"during-{verb}"


def watch(verb: str, stack: str, output: Callable[[str], None]) -> Callable[[str], None]:
    """The engine's output callback, dying once the engine is changing resources when the fault is armed."""
    step = engine_step(verb, stack)
    if not armed(step):
        return output

    def watching(line: str) -> None:
        output(line)
        if _IN_FLIGHT.search(line):
            kill()

    return watching
