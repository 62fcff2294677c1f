"""What a Dockerfile's final stage declares about how it runs: EXPOSE, USER, HEALTHCHECK (pure)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

_CONTINUATION = re.compile(r"\\\s*\n")
_HEALTHCHECK = re.compile(r"^(?:--\S+\s+)*CMD\s+(.+)$", re.IGNORECASE | re.DOTALL)
_HTTP_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(/[^\s'\"]*)?")


@dataclass(frozen=True)
class RunHints:
    """The final stage's runtime declarations; None where the Dockerfile says nothing."""

    port: int | None = None
    user: str | None = None
    health_command: tuple[str, ...] | None = None


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = _CONTINUATION.sub(" ", "\n".join(lines) + "\n")
    out = []
    for line in joined.splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            out.append((parts[0].upper(), parts[1].strip() if len(parts) > 1 else ""))
    return out


def exec_form(arguments: str) -> tuple[str, ...] | None:
    """A JSON array (exec form) as a tuple, else None."""
    if not arguments.startswith("["):
        return None
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return tuple(str(v) for v in value) if isinstance(value, list) and value else None


def run_hints(text: str) -> RunHints:
    """EXPOSE (the first port), USER and HEALTHCHECK of the last stage, the one that runs."""
    final: list[tuple[str, str]] = []
    for name, arguments in instructions(text):
        if name == "FROM":
            final = []
        else:
            final.append((name, arguments))
    port = user = None
    health: tuple[str, ...] | None = None
    for name, arguments in final:
        if name == "EXPOSE" and port is None:
            first = arguments.split()[0].split("/")[0] if arguments.split() else ""
            port = int(first) if first.isdigit() and 0 < int(first) < 65536 else None
        elif name == "USER":
            user = arguments.split()[0] if arguments else None
        elif name == "HEALTHCHECK":
            health = _healthcheck(arguments)
    return RunHints(port=port, user=user, health_command=health)


def _healthcheck(arguments: str) -> tuple[str, ...] | None:
    # Options (--interval=…) come before CMD; HEALTHCHECK NONE turns the base image's check off.
    match = _HEALTHCHECK.match(arguments)
    if not match:
        return None
    rest = match.group(1).strip()
    return exec_form(rest) or ("sh", "-c", rest)


def http_check(command: tuple[str, ...] | None) -> tuple[int | None, str] | None:
    """(port, path) when a health command only fetches a local URL (curl, wget, …); else None."""
    if not command:
        return None
    match = _HTTP_URL.search(" ".join(command))
    if not match:
        return None
    port = int(match.group(1)) if match.group(1) else None
    return port, match.group(2) or "/"


def shell_words(command: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command))
    except ValueError:
        return ("sh", "-c", command)
