"""The stack's Python program, run inside the dockyard process for the engine's `up`.

For every update the CLI's Python language host starts a second interpreter: it asks pip which
packages are installed, starts Python, and imports the Pulumi SDK, the Kubernetes SDK and dockyard
once more — 0.7 s of every `up` on two cores (1.5 s down to 0.8 s for a promote on the local cluster),
more than the engine's own update of a few objects. dockyard already runs in that interpreter with those modules loaded. So
when the engine would run the program with this very interpreter, `up` points the engine at a
language server in this process (the Automation API's inline programs), which runs the project's
own `__main__.py` as the language host would: from the program's directory, as `__main__`.

Anything else (another runtime, another interpreter or virtualenv, DOCKYARD_PROGRAM_HOST=engine) runs
the program the usual way, through the CLI's language host.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

OPT_OUT = "DOCKYARD_PROGRAM_HOST"  # "engine": always the CLI's language host


def program_file(project_dir: Path) -> Path | None:
    """The `__main__.py` the engine would run for this project, when this process can run it instead."""
    if os.environ.get(OPT_OUT) == "engine":
        return None
    try:
        project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None  # the engine says what is wrong with it
    runtime = project.get("runtime")
    name, options = (runtime, {}) if isinstance(runtime, str) else \
        ((runtime or {}).get("name"), (runtime or {}).get("options") or {})
    if name != "python" or not _same_interpreter(project_dir, options):
        return None
    main = (project_dir / str(project.get("main") or ".")).resolve()
    main = main / "__main__.py" if main.is_dir() else main
    return main if main.is_file() else None


def _venv_of(python: Path) -> Path | None:
    """The virtualenv an interpreter path belongs to (not following its symlink to the base Python)."""
    root = python.absolute().parent.parent
    return root.resolve() if (root / "pyvenv.cfg").is_file() else None


def _same_interpreter(project_dir: Path, options: dict[str, Any]) -> bool:
    """Whether the engine would start the program with the interpreter (and packages) running us."""
    ours = Path(sys.prefix).resolve()
    command = os.environ.get("PULUMI_PYTHON_CMD")
    if command:
        found = shutil.which(command)
        return found is not None and (_venv_of(Path(found)) or Path(found).resolve().parent.parent) == ours
    if options.get("virtualenv"):
        return (project_dir / str(options["virtualenv"])).resolve() == ours
    found = shutil.which("python3") or shutil.which("python")
    return found is not None and _venv_of(Path(found)) == ours


class _Lines:
    """A text stream that hands each complete line to `sink` (the program's prints, beside the engine's output)."""

    encoding, errors = "utf-8", "replace"

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink, self.pending, self.lock = sink, "", threading.Lock()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.sink(line)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            line, self.pending = self.pending, ""
        if line:
            self.sink(line)


def warm(modules: list[str]) -> None:
    """Import the program's modules in the background while the engine starts: by the time it asks for the
    program they are loaded (an import the program makes meanwhile waits for this one, never repeats it)."""
    import importlib

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the program itself raises it, where the engine reports it
                return

    threading.Thread(target=load, name="dockyard-warm-program", daemon=True).start()


def _forget_project_modules(directory: Path, before: set[str]) -> None:
    """Drop the modules of the project's own code that this run imported, so the next run in this process
    (an automatic rollback's `up`) executes them again, as a fresh language host would: a module that
    registers resources when imported would otherwise register nothing the second time, and the engine
    would delete what it made. dockyard's own modules and installed packages (a virtualenv inside the
    project included) stay: the command shares them."""
    root = directory.resolve()
    installed = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for name in set(sys.modules) - before:
        if name == "dockyard" or name.startswith("dockyard."):
            continue
        path = getattr(sys.modules.get(name), "__file__", None)
        if not path:
            continue
        where = Path(path).resolve()
        if where.is_relative_to(root) and not any(where.is_relative_to(p) for p in installed) \
                and "site-packages" not in where.parts:
            del sys.modules[name]


@contextmanager
def serving(main: Path, on_output: Callable[[str], None]) -> Iterator[str]:
    """A language server in this process that runs `main` for one engine operation; yields its address."""
    from concurrent import futures

    import grpc
    from pulumi.automation._server import LanguageServer
    from pulumi.runtime.proto import language_pb2_grpc

    def program() -> None:
        import runpy

        saved = os.getcwd(), list(sys.path), sys.stdout, set(sys.modules)
        os.chdir(main.parent)
        sys.path.insert(0, str(main.parent))
        sys.stdout = _Lines(on_output)  # never into the command's own output (--json)
        try:
            runpy.run_path(str(main), run_name="__main__")
        finally:
            sys.stdout.flush()
            os.chdir(saved[0])
            sys.path[:], sys.stdout = saved[1], saved[2]
            _forget_project_modules(main.parent, before=saved[3])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageServer(program), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
