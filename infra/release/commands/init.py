"""`dockyard init`: turn a team's repository into a dockyard project, writing nothing over anything."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockyard import naming, targets
from dockyard.errors import BadInput, Conflict, DockyardError
from dockyard.release.scaffold import render
from dockyard.release.scaffold.discover import Discovery, FoundService, discover, service_name
from dockyard.validation import HTTP_PATH

# (question, default) -> answer; None when there is no terminal to ask on.
Ask = Callable[[str, str | None], str]


@dataclass(frozen=True)
class InitOptions:
    """The flags: anything given here is not asked."""

    target: str | None = None
    store: str | None = None
    registry: str | None = None  # ecr, or HOST[/PREFIX] of an OCI registry
    region: str | None = None
    project: str | None = None
    health: Mapping[str, str] = field(default_factory=dict)  # service -> HTTP path
    trust_key: str | None = None
    default_route: str | None = None  # the service that takes / when several listen
    yes: bool = False


@dataclass
class InitResult:
    directory: Path
    written: list[str]
    choices: render.Choices
    notes: list[str]
    next_commands: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "files": self.written, "target": self.choices.target,
                "store": self.choices.store, "registry": self._registry(),
                "services": [s.to_json() for s in self.choices.services], "notes": self.notes,
                "next": self.next_commands}

    def _registry(self) -> str:
        c = self.choices
        return f"{c.oci_host}/{c.oci_prefix}" if c.registry == "oci" else "ecr"

    def lines(self) -> list[str]:
        out = [f"Wrote {', '.join(self.written)} in {self.directory}",
               f"  target {self.choices.target}, release store {self.choices.store}, registry {self._registry()}"]
        for s in self.choices.services:
            runs = (f"port {s.port}, health {s.health_path or render.DEFAULT_HEALTH_PATH}" if s.port
                    else "no port" + (f", health `{' '.join(s.health_command)}`" if s.health_command else ""))
            out.append(f"  {s.name}: {s.dockerfile} ({runs}; from {s.source})")
        out += [f"  note: {n}" for n in self.notes]
        out += ["", "Next:"] + [f"  {c}" for c in self.next_commands]
        return out


def terminal_ask() -> Ask | None:
    if not sys.stdin.isatty():
        return None

    def ask(question: str, default: str | None) -> str:
        import typer

        try:
            return str(typer.prompt(question, default=default, err=True))
        except typer.Abort:  # end of input or Ctrl-C: a refusal, and nothing is written yet
            raise DockyardError(f"no answer to: {question}; wrote nothing",
                                hint="answer on a terminal, or pass flags (and --yes) as CI does") from None

    return ask


def init(directory: Path, options: InitOptions, ask: Ask | None) -> InitResult:
    """Write Pulumi.yaml, __main__.py and the registry/dev/prod stack files for the services found."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise BadInput(f"{directory} is not a directory", hint="run dockyard init at the top of your repository")
    _check_flags(options)
    discovery = discover(directory)
    if not discovery.services:
        raise BadInput(f"no Dockerfile and no compose file with a build in {directory}",
                       hint="dockyard builds images from Dockerfiles; add one per service, then run dockyard init")
    names = [s.name for s in discovery.services]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise BadInput(f"two services would be named {duplicate[0]}", hint="rename one of them in the compose file")
    unknown = sorted((set(options.health) | ({options.default_route} if options.default_route else set()))
                     - set(names))
    if unknown:
        raise BadInput(f"no service {unknown[0]} (--health, --default-route); services: {', '.join(names)}")
    existing = [name for name in _file_names() if (directory / name).exists()]
    if existing:
        raise Conflict(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''} in {directory}; "
                       "dockyard init writes nothing over a file, so it wrote nothing",
                       hint="move them aside (or run dockyard init in a fresh checkout), then run it again")
    prompt = None if options.yes else ask
    choices = _choose(directory, discovery, options, prompt)
    contents = render.files(choices)
    _check_loads(contents)
    written = _write_all(directory, contents)
    notes = list(discovery.notes)
    notes += [f"{s.name}: no health check found; checks {render.DEFAULT_HEALTH_PATH} (set --health "
              f"{s.name}=/path, or healthCheckPath in Pulumi.yaml)"
              for s in choices.services if s.port and not s.health_path]
    if not (directory / ".git").exists():
        notes.append("not a git repository: each image's commit comes from $DOCKYARD_COMMIT instead")
    return InitResult(directory, written, choices, notes, next_commands(choices))


def _check_loads(contents: Mapping[str, str]) -> None:
    """Every stack of the project as written loads through dockyard's own configuration, or nothing is written
    (a prefix the registry refuses, a name Kubernetes would): the same check every command makes."""
    import tempfile

    from dockyard.release.project import Project

    with tempfile.TemporaryDirectory(prefix="dockyard-init-") as scratch:
        for name, text in contents.items():
            (Path(scratch) / name).write_text(text, encoding="utf-8")
        project = Project(Path(scratch))
        for stack in (render.REGISTRY, *render.ENVIRONMENTS):
            project.environment(stack)


def _file_names() -> list[str]:
    return ["Pulumi.yaml", "__main__.py", "Pulumi.registry.yaml", *(f"Pulumi.{e}.yaml" for e in render.ENVIRONMENTS)]


def _check_flags(options: InitOptions) -> None:
    for flag, value, allowed in (("--target", options.target, render.TARGETS), ("--store", options.store,
                                                                                  render.STORES)):
        if value is not None and value not in allowed:
            raise BadInput(f"{flag}: got {value!r}; expected one of {', '.join(allowed)}")
    for service, path in options.health.items():
        if not HTTP_PATH.match(path):
            raise BadInput(f"--health {service}={path}: expected an absolute URL path like /healthz")
    if options.project is not None:
        _project_name(options.project)


def _project_name(name: str) -> str:
    if not name or len(name) > 40 or not name[0].isalpha() or not all(c.isalnum() or c in "-_" for c in name):
        raise BadInput(f"--project: got {name!r}; expected letters, digits, '-' and '_', starting with a letter")
    return name


def _choose(directory: Path, discovery: Discovery, options: InitOptions, ask: Ask | None) -> render.Choices:
    def pick(flag: str, given: str | None, question: str, default: str | None, allowed: tuple[str, ...] = ()) -> str:
        if given is not None:
            return given
        if ask is not None:
            while True:
                answer = ask(question + (f" ({'/'.join(allowed)})" if allowed else ""), default).strip()
                if answer and (not allowed or answer in allowed):
                    return answer
        if options.yes and default is not None:
            return default
        took = f", or --yes to take {default}" if default is not None and not options.yes else ""
        raise BadInput(f"{flag} is needed and there is no terminal to ask on",
                       hint=f"pass {flag}{took} (dockyard init --help lists the flags)")

    project = options.project or service_name(directory.name)
    target = pick("--target", options.target, "Deploy to", "kubernetes", render.TARGETS)
    store = pick("--store", options.store, "Keep releases in", "file", render.STORES)
    in_aws = targets.for_name(target).aws
    registry_default = "ecr" if in_aws else os.environ.get("DOCKYARD_REGISTRY")
    registry = pick("--registry", options.registry, "Push images to (ecr, or HOST[/PREFIX] of an OCI registry)",
                    registry_default)
    oci_host, oci_prefix = None, project
    if registry != "ecr":
        oci_host, _, prefix = registry.partition("/")
        oci_prefix = prefix or project
        if not oci_host:
            raise BadInput(f"--registry: got {registry!r}; expected ecr or HOST[/PREFIX], like ghcr.io/acme")
    needs_aws = in_aws or store == "ssm" or registry == "ecr"
    region = None
    if needs_aws:
        region = pick("--region", options.region, "AWS region",
                      os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    services = []
    for s in discovery.services:
        path = options.health.get(s.name) or s.health_path
        if s.port and not path and ask is not None:
            path = _ask_path(ask, s)
        elif s.port and not path and not options.yes:
            raise BadInput(f"{s.name} listens on {s.port} and has no health check; its HTTP health path is needed "
                           "and there is no terminal to ask on",
                           hint=f"pass --health {s.name}=/path (or --yes to check {render.DEFAULT_HEALTH_PATH})")
        services.append(replace(s, health_path=path))
    default_route = None
    if render.front_service(discovery.services) is not None:
        routed = tuple(s.name for s in discovery.services if s.port is not None)
        default_route = pick("--default-route", options.default_route,
                             "Which service takes the default route / (the others get /<service>/*)",
                             render.front_service(discovery.services), routed)
        if default_route not in routed:
            raise BadInput(f"--default-route {default_route}: it listens on no port; expected one of "
                           f"{', '.join(routed)}")
    if store == "ssm":
        for env in render.ENVIRONMENTS:
            naming.validate_parameter_name(f"/{project}/{env}/release")
    return render.Choices(project=project, target=target, store=store, registry="ecr" if registry == "ecr" else "oci",
                          oci_host=oci_host, oci_prefix=oci_prefix, region=region, virtualenv=_virtualenv(directory),
                          services=tuple(services), trust_key=options.trust_key, default_route=default_route)


def _ask_path(ask: Ask, service: FoundService) -> str:
    while True:
        answer = ask(f"{service.name}: the HTTP path that answers 2xx when it is healthy",
                     render.DEFAULT_HEALTH_PATH).strip()
        if HTTP_PATH.match(answer):
            return answer


def _virtualenv(directory: Path) -> str | None:
    """The virtualenv this dockyard runs from, for the engine to run the program with (relative when inside)."""
    if sys.prefix == sys.base_prefix:
        return None
    prefix = Path(sys.prefix).resolve()
    try:
        return prefix.relative_to(directory).as_posix()
    except ValueError:
        return str(prefix)


def _write_all(directory: Path, contents: Mapping[str, str]) -> list[str]:
    """Every file or none: each is created exclusively; if one cannot be, the ones written are removed."""
    written: list[Path] = []
    try:
        for name, text in contents.items():
            path = directory / name
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
            written.append(path)
    except FileExistsError as err:
        for path in written:
            path.unlink(missing_ok=True)
        raise Conflict(f"{Path(err.filename).name} appeared in {directory} while writing; wrote nothing",
                       hint="run dockyard init again") from None
    except OSError as err:
        for path in written:
            path.unlink(missing_ok=True)
        raise BadInput(f"cannot write {err.filename}: {err.strerror}; wrote nothing") from None
    return [p.name for p in written]


def next_commands(choices: render.Choices) -> list[str]:
    # A state directory in the repository (git-ignore .dockyard/), or the team's backend with `pulumi login`.
    steps = ["mkdir -p .dockyard/state && export PULUMI_BACKEND_URL=\"file://$PWD/.dockyard/state\" "
             "PULUMI_CONFIG_PASSPHRASE=   # or: pulumi login <your backend>"]
    reach = targets.for_name(choices.target).reach()
    if reach:
        steps.append(reach)
    steps += ["dockyard build --local   # build, push and record each image",
              "dockyard promote dev --from registry   # deploy those digests to dev and verify them"]
    return steps
