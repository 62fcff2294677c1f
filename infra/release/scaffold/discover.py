"""The services a repository already describes: its compose file's built services, else its Dockerfiles.

Reads files only (no engine, no network). Paths in the result are relative to the repository, with `/`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dockyard.errors import BadInput
from dockyard.release.scaffold.dockerfile import RunHints, http_check, run_hints, shell_words

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
# Folders that hold other people's Dockerfiles (dependencies, build output) or none at all.
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "vendor", "dist", "build", "target", "__pycache__",
             ".dockyard", ".terraform", ".tox", ".pulumi"}
_SERVICE = re.compile(r"[^a-z0-9-]+")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY", re.IGNORECASE)


@dataclass(frozen=True)
class FoundService:
    """One service to build and run, and what the repository says about running it."""

    name: str
    context: str
    dockerfile: str
    source: str  # where it was found: "compose.yaml" or the Dockerfile's path
    port: int | None = None
    health_path: str | None = None
    health_command: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    command: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "context": self.context, "dockerfile": self.dockerfile,
                                "source": self.source, "port": self.port}
        if self.health_path:
            data["healthCheckPath"] = self.health_path
        if self.health_command:
            data["healthCheckCommand"] = list(self.health_command)
        if self.environment:
            data["environment"] = dict(self.environment)
        if self.user:
            data["user"] = self.user
        return data


@dataclass(frozen=True)
class Discovery:
    services: tuple[FoundService, ...]
    compose_file: str | None
    notes: tuple[str, ...]  # what was seen but not taken, one line each


def service_name(raw: str) -> str:
    """A valid dockyard service name from a folder or compose name: lowercase, letters, digits and '-'."""
    name = _SERVICE.sub("-", raw.lower()).strip("-")
    if name and not name[0].isalpha():
        name = f"svc-{name}"
    return name[:32].rstrip("-") or "app"


def find_dockerfiles(root: Path) -> list[PurePosixPath]:
    """Every Dockerfile (`Dockerfile`, `Containerfile`, `Dockerfile.<x>`, `<x>.Dockerfile`), sorted."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            lower = name.lower()
            if lower in ("dockerfile", "containerfile") or lower.startswith("dockerfile.") or \
                    lower.endswith(".dockerfile"):
                found.append(PurePosixPath(Path(directory, name).relative_to(root).as_posix()))
    return sorted(found)


def _name_for(path: PurePosixPath, root: Path) -> str:
    lower = path.name.lower()
    if lower.startswith("dockerfile.") or lower.endswith(".dockerfile"):
        stem = path.name[len("dockerfile."):] if lower.startswith("dockerfile.") else path.name[:-len(".dockerfile")]
        return service_name(stem)
    return service_name(path.parent.name if str(path.parent) != "." else root.resolve().name)


def _from_dockerfile(path: PurePosixPath, name: str, hints: RunHints) -> FoundService:
    http = http_check(hints.health_command)
    return FoundService(
        name=name, context=str(path.parent) if str(path.parent) != "" else ".", dockerfile=str(path),
        source=str(path), port=hints.port or (http[0] if http else None),
        health_path=http[1] if http else None, health_command=None if http else hints.health_command,
        user=hints.user)


def discover(root: Path) -> Discovery:
    """The services of the repository at `root`: a compose file's, when there is one, else one per Dockerfile."""
    compose = next((root / name for name in COMPOSE_FILES if (root / name).is_file()), None)
    dockerfiles = find_dockerfiles(root)
    if compose is not None:
        services, notes = _from_compose(root, compose)
        used = {s.dockerfile for s in services}
        notes += [f"{path}: not a built service of {compose.name}; not added" for path in dockerfiles
                  if str(path) not in used]
        return Discovery(tuple(services), compose.name, tuple(notes))
    names = [_name_for(path, root) for path in dockerfiles]
    services = []
    for path, name in zip(dockerfiles, names):
        if names.count(name) > 1:  # folders of the same name (services/api, legacy/api): their parents tell
            name = service_name(f"{path.parent.parent.name}-{name}")
        hints = run_hints((root / path).read_text(errors="replace"))
        services.append(_from_dockerfile(path, name, hints))
    return Discovery(tuple(services), None, ())


def _load_compose(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise BadInput(f"{path.name}: not valid YAML{where}", hint=f"fix {path.name}, or move it aside and "
                                                                   "run dockyard init again") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise BadInput(f"{path.name}: has no services map", hint=f"fix {path.name}, or move it aside")
    return data


def _from_compose(root: Path, path: Path) -> tuple[list[FoundService], list[str]]:
    services: list[FoundService] = []
    notes: list[str] = []
    for raw_name, spec in _load_compose(path)["services"].items():
        spec = spec if isinstance(spec, dict) else {}
        build = spec.get("build")
        if build is None:
            notes.append(f"{raw_name}: runs {spec.get('image', 'an image')} that this repository does not build; "
                         "not added")
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = _relative(root, path.parent / str(build.get("context", ".")))
        dockerfile = _relative(root, path.parent / context / str(build.get("dockerfile", "Dockerfile"))) \
            if not str(build.get("dockerfile", "")).startswith("/") else str(build["dockerfile"])
        if not (root / dockerfile).is_file():
            notes.append(f"{raw_name}: {dockerfile} does not exist; not added")
            continue
        hints = run_hints((root / dockerfile).read_text(errors="replace"))
        name = service_name(str(raw_name))
        health_path, health_command, health_port = _health(spec.get("healthcheck"), hints)
        environment, skipped = _environment(spec.get("environment"))
        notes += [f"{name}: environment {key} {why}; not added" for key, why in skipped]
        command = spec.get("command")
        services.append(FoundService(
            name=name, context=context, dockerfile=dockerfile, source=path.name,
            port=_port(spec.get("ports")) or _port(spec.get("expose")) or hints.port or health_port,
            health_path=health_path, health_command=health_command, environment=environment,
            user=str(spec["user"]) if spec.get("user") is not None else hints.user,
            command=(tuple(str(c) for c in command) if isinstance(command, list)
                     else shell_words(command) if isinstance(command, str) else None)))
    return services, notes


def _relative(root: Path, path: Path) -> str:
    resolved, base = Path(os.path.normpath(path.resolve())), root.resolve()
    try:
        return resolved.relative_to(base).as_posix() or "."
    except ValueError:
        raise BadInput(f"{path}: outside the repository {base}",
                       hint="dockyard builds from the repository; run dockyard init at its top") from None


def _port(ports: Any) -> int | None:
    """The container side of the first port: `8080:80` -> 80, `127.0.0.1:8080:80/tcp` -> 80, {target: 80}."""
    for entry in ports if isinstance(ports, list) else []:
        target = entry.get("target") if isinstance(entry, dict) else str(entry).split(":")[-1].split("/")[0]
        text = str(target).split("-")[0]
        if text.isdigit() and 0 < int(text) < 65536:
            return int(text)
    return None


def _health(check: Any, hints: RunHints) -> tuple[str | None, tuple[str, ...] | None, int | None]:
    """(HTTP path, command, port the URL names) from compose's healthcheck, else the Dockerfile's."""
    command = hints.health_command
    if isinstance(check, dict) and not check.get("disable") and check.get("test") is not None:
        test = check["test"]
        if isinstance(test, str):
            command = ("sh", "-c", test)
        elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
            command = ("sh", "-c", " ".join(str(t) for t in test[1:]))
        elif isinstance(test, list) and test and test[0] == "CMD":
            command = tuple(str(t) for t in test[1:])
        elif isinstance(test, list) and test and test[0] == "NONE":
            command = None
    http = http_check(command)
    if http:
        return http[1], None, http[0]
    return None, command, None


def _environment(raw: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Plain values only: a variable taken from the host, interpolated, or that looks like a secret is skipped."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = [tuple(str(e).split("=", 1)) if "=" in str(e) else (str(e), None) for e in raw]  # type: ignore[misc]
    taken, skipped = {}, []
    for key, value in pairs:
        key = str(key)
        if not _ENV_NAME.match(key):
            skipped.append((key, "is not a valid variable name"))
        elif value is None:
            skipped.append((key, "comes from the host's environment"))
        elif _SECRET_LIKE.search(key):
            skipped.append((key, "looks like a secret (set it with secrets)"))
        elif "${" in str(value):
            skipped.append((key, f"is interpolated ({value})"))
        else:
            taken[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return taken, skipped
