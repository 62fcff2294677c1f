"""The Pulumi engine behind a narrow interface, and the one place engine errors become dockyard errors.

Commands talk to a `Deployer`; `AutomationDeployer` drives the real engine
through the Automation API (the `pulumi` CLI on PATH), tests use a fake.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dockyard.errors import BadInput, DockyardError


@dataclass(frozen=True)
class Preview:
    changes: dict[str, int]  # operation -> count, e.g. {"create": 3, "same": 10}
    text: str = ""


@dataclass(frozen=True)
class StackSummary:
    name: str
    last_update: datetime | None = None
    update_in_progress: bool = False


@dataclass
class UpResult:
    outputs: dict[str, Any]
    changes: dict[str, int] = field(default_factory=dict)


class Deployer(Protocol):
    def up(self, stack: str) -> UpResult: ...

    def preview(self, stack: str) -> Preview: ...

    def outputs(self, stack: str) -> dict[str, Any]: ...

    def destroy(self, stack: str) -> None:
        """Destroy every resource of the stack, then remove the stack itself."""

    def qualified_name(self, stack: str) -> str:
        """`<organization>/<project>/<stack>` as the backend knows the stack (its organization included)."""

    def stacks(self) -> list[StackSummary]: ...

    def copy_secret_config(self, source: str, dest: str, paths: list[str]) -> None:
        """Copy secret config values (`--path` keys) from one stack to another, re-encrypted for `dest`."""

    def set_config(self, stack: str, values: dict[str, str]) -> None:
        """Set plain `dockyard:` config values (`--path` keys, e.g. `prebuilt.web`) in the stack's file."""


ENGINE_HINT = "./scripts/setup builds the engine; then export PATH=\"$(./scripts/setup --print-path):$PATH\""


def _last_error_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if l.lower().startswith("error:")]
    picked = errors[-1] if errors else (lines[-1] if lines else "no output")
    picked = re.sub(r"^error:\s*", "", picked, flags=re.IGNORECASE)
    # The program run in this process (program_host): its exception, without the SDK's wording around it.
    return picked.replace("python inline source runtime error: ", "")


def translate(err: Exception, stack: str, known: Callable[[], list[str]] | None = None) -> DockyardError:
    """An Automation API failure as the dockyard error that says what to do about it."""
    from pulumi import automation as auto

    if isinstance(err, DockyardError):
        return err
    if isinstance(err, FileNotFoundError):
        return DockyardError("the pulumi CLI is not on PATH", hint=ENGINE_HINT)
    if isinstance(err, auto.ConcurrentUpdateError):
        text = str(err)
        holder = re.search(r"locked by \d+ lock\(s\)[^\n]*|Another update is currently in progress[^\n]*", text)
        from dockyard.release.recovery.stack_lock import StackLocked

        return StackLocked(f"stack {stack} is locked by another update" + (f" ({holder.group(0).strip()})" if holder else ""),
                        hint=f"wait for it to finish; if it died, `pulumi cancel -s {stack}` "
                             f"(or `pulumi stack export/import`) releases the lock")
    if isinstance(err, auto.StackNotFoundError):
        stacks = ", ".join(known()) if known else ""
        return BadInput(f"stack {stack} does not exist in this backend",
                        hint=f"known stacks: {stacks}" if stacks else "create it with `pulumi stack init`")
    if isinstance(err, auto.CommandError):
        result = str(err)
        stderr = result.split("stderr:", 1)[-1]
        stdout = result.split("stdout:", 1)[-1].split("stderr:", 1)[0]
        return DockyardError(f"pulumi failed for stack {stack}: {_last_error_line(stderr + stdout)}")
    return DockyardError(f"pulumi failed for stack {stack}: {err}")


def run_pulumi(args: list[str], cwd: Path, on_output: Callable[[str], None]) -> None:
    """The `pulumi` CLI with `args`, each line of its output (stripped) to `on_output`, as the Automation
    API streams it; a failure raised as the Automation API's typed error (stack not found, locked, ...),
    which `translate` turns into ours. (`auto.PulumiCommand` would first run `pulumi version` each time.)"""
    import subprocess
    import threading

    from pulumi import automation as auto
    from pulumi.automation.errors import create_command_error

    # PULUMI_DEBUG_COMMANDS: what makes the CLI accept --event-log.
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DEBUG_COMMANDS": "true"}
    out: list[str] = []
    errors: list[str] = []
    with subprocess.Popen(["pulumi", *args], cwd=cwd, env=env, encoding="utf-8", stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: errors.extend(line.rstrip() for line in stderr), daemon=True)
        reader.start()
        for line in proc.stdout:
            out.append(line.rstrip())
            on_output(out[-1])
        reader.join()
    if proc.returncode != 0:
        raise create_command_error(auto.CommandResult(stdout="\n".join(out), stderr="\n".join(errors),
                                                      code=proc.returncode))


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value


def update_events(log: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The stack's outputs and the summary's resource changes from an update's event log (one JSON event
    per line). Outputs are None when the log does not carry them whole (none recorded, or one is secret)."""
    import json

    outputs: dict[str, Any] | None = None
    changes: dict[str, int] = {}
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line the engine was still writing when it was killed
        summary = event.get("summaryEvent")
        if summary:
            changes = {op: int(n) for op, n in (summary.get("resourceChanges") or {}).items()}
        done = (event.get("resOutputsEvent") or {}).get("metadata") or {}
        if done.get("type") == "pulumi:pulumi:Stack":
            outputs = dict((done.get("new") or {}).get("outputs") or {})
    if outputs is not None:
        text = json.dumps(outputs)
        if "[secret]" in text or SECRET_SIG in text:
            outputs = None
    return outputs, changes


class AutomationDeployer:
    """The real engine: the project's own program, run by the `pulumi` CLI through the Automation API."""

    def __init__(self, project_dir: Path, *, log: Callable[[str], None] | None = None,
                 engine_log: Path | None = None) -> None:
        self.project_dir = project_dir
        self.log = log or (lambda line: print(line, file=sys.stderr, end="" if line.endswith("\n") else "\n"))
        # The engine's own output goes to this file; the user sees one line per operation (and a
        # heartbeat while it runs). None: the engine's output is streamed to the log instead.
        self.engine_log = engine_log

    @contextmanager
    def _operation(self, verb: str, stack: str) -> Iterator[Callable[[str], None]]:
        """One line when the engine starts on `stack`, its output in the engine log, a heartbeat meanwhile."""
        from dockyard.release.recovery import faults

        if self.engine_log is None:
            yield faults.watch(verb, stack, self.log)
            return
        from dockyard.release.progress import heartbeat

        self.engine_log.parent.mkdir(parents=True, exist_ok=True)
        with self.engine_log.open("a") as sink:
            sink.write(f"\n=== pulumi {verb} {stack} ===\n")
            self.log(f"   pulumi {verb} {stack} (engine log: {self.engine_log})")
            with heartbeat(self.log, f"pulumi {verb} {stack}"):
                yield faults.watch(verb, stack, lambda line: (sink.write(line if line.endswith("\n") else line + "\n"),
                                                              sink.flush()))

    def _workspace(self) -> Any:
        from pulumi import automation as auto

        return auto.LocalWorkspace(work_dir=str(self.project_dir))

    def _stack(self, name: str, *, create: bool = False) -> Any:
        from pulumi import automation as auto

        workspace = self._workspace()
        if create:
            return auto.Stack.create_or_select(name, workspace)
        return auto.Stack.select(name, workspace)

    def _app_target(self, stack: str) -> tuple[Any, Any] | None:
        """The stack's app settings and its target, read once from the stack file; None for the registry
        stack or a stack dockyard cannot read (the engine then reports what is wrong)."""
        from dockyard import targets
        from dockyard.config import AppSettings
        from dockyard.release.project import Project

        try:
            settings = Project(self.project_dir).environment(stack).settings
        except DockyardError:
            return None
        return (settings, targets.of(settings)) if isinstance(settings, AppSettings) else None

    @contextmanager
    def _engine(self, stack: str, found: tuple[Any, Any] | None = None) -> Iterator[None]:
        """Engine errors translated; the environment variables the stack's target keeps from the engine
        (see Target.hidden_environment) hidden meanwhile. `found`: the stack's `_app_target`, when the
        caller has read it already."""
        if found is None and stack != "*":
            found = self._app_target(stack)
        names = found[1].hidden_environment(found[0]) if found else ()
        hidden = {name: os.environ.pop(name) for name in names if name in os.environ}
        try:
            yield
        except Exception as err:  # noqa: BLE001 - translated into the project's typed errors
            failure = translate(err, stack, known=self._names)
            if self.engine_log is not None and failure.hint is None and not isinstance(err, DockyardError):
                failure.hint = f"the engine's full log is in {self.engine_log}"
            raise failure from None
        finally:
            os.environ.update(hidden)

    def _names(self) -> list[str]:
        try:
            return sorted(s.name for s in self._workspace().list_stacks())
        except Exception:  # noqa: BLE001 - only feeds a hint
            return []

    def _unlocked(self, stack: str, operation: Callable[[], Any]) -> Any:
        """Run `operation`; if a killed engine left the stack locked, release the lock and run it once more."""
        from dockyard.release.recovery.stack_lock import StackLocked, recover

        try:
            return operation()
        except StackLocked as err:
            released, advice = recover(self.project_dir, stack, lambda: self._cancel(stack), self.log)
            if not released:
                err.hint = advice
                raise
        return operation()

    def _cancel(self, stack: str) -> None:
        with self._engine(stack):
            self._stack(stack).cancel()

    def up(self, stack: str) -> UpResult:
        return self._unlocked(stack, lambda: self._up(stack))

    def _up(self, stack: str) -> UpResult:
        """`pulumi up` itself, its outputs and its changes read from its own event log.

        The Automation API's `Stack.up` costs five more CLI runs around the update (the version check,
        `stack select`, two `stack output` and a `stack history` for the summary): 0.8 s of CLI runs on
        every promote and rollback here. The update's event log already holds the stack's outputs and the
        summary; only when an output is secret (masked there) are the outputs asked for once more.
        """
        import tempfile

        from pulumi import automation as auto

        from dockyard.release import program_host

        found = self._app_target(stack)  # read once: for the hidden environment and the refresh question
        main = program_host.program_file(self.project_dir)
        if main:
            program_host.warm(["dockyard.program", "dockyard.app",
                               *([found[1].program_module] if found and found[1].program_module else [])])
        with self._engine(stack, found), self._operation("up", stack) as output, \
                tempfile.TemporaryDirectory(prefix="dockyard-up-") as scratch, \
                (program_host.serving(main, output) if main else nullcontext()) as host:
            events = Path(scratch) / "events.json"
            # The program in this process (see program_host) or, failing that, the CLI's language host.
            runs = ["--exec-kind", "auto.inline", "--client", host] if host else ["--exec-kind", "auto.local"]
            args = ["up", "--yes", "--skip-preview", "--non-interactive", "--color", "never", *runs,
                    "--event-log", str(events), "--stack", stack]
            if found and found[1].refresh_before_up(found[0]):  # see Target.refresh_before_up
                args.append("--refresh")
            try:
                run_pulumi(args, self.project_dir, output)
            except auto.StackNotFoundError:
                auto.Stack.create(stack, self._workspace())
                run_pulumi(args, self.project_dir, output)
            outputs, changes = update_events(events.read_text() if events.is_file() else "")
        if outputs is None:
            outputs = self.outputs(stack)
        return UpResult(outputs=outputs, changes=changes)

    def preview(self, stack: str) -> Preview:
        return self._unlocked(stack, lambda: self._preview(stack))

    def _preview(self, stack: str) -> Preview:
        with self._engine(stack), self._operation("preview", stack) as output:
            result = self._stack(stack, create=True).preview(on_output=output, color="never", diff=True)
            return Preview(changes=dict(result.change_summary or {}), text=result.stdout)

    def outputs(self, stack: str) -> dict[str, Any]:
        with self._engine(stack):
            return {k: v.value for k, v in self._stack(stack).outputs().items()}

    def qualified_name(self, stack: str) -> str:
        import json

        with self._engine(stack):
            workspace = self._workspace()
            # -Q: the names with their organization (`organization` on self-managed backends, a user or
            # team on Pulumi Cloud); plain `stack ls` shortens names in the default organization.
            listed = workspace.pulumi_command.run(["stack", "ls", "--json", "--fully-qualify-stack-names"],
                                                  workspace.work_dir, dict(workspace.env_vars))
            names = [item["name"] for item in json.loads(listed.stdout)]
            for name in names:
                if name.count("/") == 2 and name.rsplit("/", 1)[1] == stack:
                    return name
            raise BadInput(f"stack {stack} does not exist in this backend",
                           hint=f"deploy it first: dockyard deploy {stack}")

    def destroy(self, stack: str) -> None:
        self._unlocked(stack, lambda: self._destroy(stack))

    def _destroy(self, stack: str) -> None:
        with self._engine(stack), self._operation("destroy", stack) as output:
            self._stack(stack).destroy(on_output=output, color="never")
            self._workspace().remove_stack(stack)

    def copy_secret_config(self, source: str, dest: str, paths: list[str]) -> None:
        from pulumi import automation as auto

        with self._engine(dest):
            origin, target = self._stack(source), self._stack(dest, create=True)
            for path in paths:
                value = origin.get_config(path, path=True).value
                target.set_config(path, auto.ConfigValue(value=value, secret=True), path=True)

    def set_config(self, stack: str, values: dict[str, str]) -> None:
        from pulumi import automation as auto

        with self._engine(stack):
            target = self._stack(stack, create=True)
            for path, value in values.items():
                target.set_config(f"dockyard:{path}", auto.ConfigValue(value=value), path=True)

    def stacks(self) -> list[StackSummary]:
        with self._engine("*"):
            return [StackSummary(name=s.name, last_update=s.last_update,
                                 update_in_progress=bool(s.update_in_progress))
                    for s in self._workspace().list_stacks()]
