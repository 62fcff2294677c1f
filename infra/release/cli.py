"""Command-line entry point of `dockyard`: parse, run one operation, render its result once.

stdout carries only the result (text, or one JSON document with --json);
progress, engine output and logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Optional

import typer

from dockyard.errors import BadInput, DockyardError

app = typer.Typer(
    name="dockyard",
    help=(
        "Ship containers with Pulumi: build each image once, then promote, verify and roll back "
        "releases by digest.\n\n"
        "The registry stack builds images and publishes a release manifest (service -> digest); "
        "app stacks deploy what an environment's release says, never building anything."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
branch_app = typer.Typer(help="Per-branch preview stacks (branch-<slug>).", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(branch_app, name="branch")

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout; logs go to stderr.")
PROJECT = typer.Option(None, "--project-dir", help="The project directory (default: found from the current one).")
DEBUG = typer.Option(False, "--debug", help="Show a traceback for unexpected errors.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
SERVICES = typer.Option([], "--service", help="Only these services (repeatable).")
REASON = typer.Option(None, "--reason", help="Why: recorded in the release.")
NO_DEPLOY = typer.Option(False, "--no-deploy", help="Write the release but do not deploy it.")


def _print_version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"dockyard {version('dockyard')}")
        except PackageNotFoundError:
            typer.echo("dockyard (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    show_version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                      callback=_print_version, is_eager=True),
) -> None:
    """Ship containers with Pulumi: build once, deploy by digest."""


# ----------------------------------------------------------------------------- plumbing


def _log(line: str) -> None:
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


def make_context(project_dir: Path | None) -> Any:
    """The Context commands run with; tests replace this to inject a fake engine."""
    from dockyard.release.context import Context
    from dockyard.release.engine import AutomationDeployer
    from dockyard.release.project import Project

    project = Project.find((project_dir or Path.cwd()).resolve())
    confirm = (lambda question: typer.confirm(question, err=True)) if sys.stdin.isatty() else None
    engine_log = project.dir / ".dockyard" / "logs" / "engine.log"
    return Context(project=project, log=_log,
                   deployer_factory=lambda: AutomationDeployer(project.dir, log=_log, engine_log=engine_log),
                   confirm=confirm)


def _render_table(header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in header:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(highlight=False, width=max(len(" ".join(header)) + 120, 160)).print(table)


def run(operation: Callable[[Any], Any], *, as_json: bool, project_dir: Path | None, debug: bool) -> None:
    """Run one operation; print its result, or one error line (and hint), and exit with the documented code."""
    from dockyard.release.failures import as_dockyard_error

    try:
        result = operation(make_context(project_dir))
    except typer.Exit:
        raise
    except Exception as err:  # noqa: BLE001 - every failure leaves through the same door
        failure = as_dockyard_error(err)
        if debug and not isinstance(err, DockyardError):
            traceback.print_exc()
        if as_json:
            typer.echo(json.dumps({"error": {"code": failure.code, "message": failure.message,
                                             **({"hint": failure.hint} if failure.hint else {})}}))
        _log(f"error: {failure.message}")
        if failure.hint:
            _log(f"hint: {failure.hint}")
        raise typer.Exit(failure.exit_code) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), sort_keys=True))
    elif hasattr(result, "table"):
        _render_table(*result.table())
    else:
        for line in result.lines():
            typer.echo(line)


# ----------------------------------------------------------------------------- release commands


@app.command()
def build(
    local: bool = typer.Option(False, "--local", help="Build and push with the local engine (buildx or docker "
                                                      "build; Packer where a service says so), then record the "
                                                      "pushed digests as dockyard:prebuilt."),
    push_only: bool = typer.Option(False, "--push-only", help="With --local: build and push, record nothing."),
    against: Optional[str] = typer.Option(None, "--against", help="With --local: also list the services whose "
                                                                   "digest differs from this environment's."),
    service: list[str] = SERVICES,
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Up the registry stack: build and push images, publish its manifest."""
    if not local and (push_only or against or service):
        def refuse(_ctx: Any) -> None:
            raise BadInput("--push-only, --against and --service go with --local", hint="dockyard build --help")

        run(refuse, as_json=as_json, project_dir=project_dir, debug=debug)
    if local:
        from dockyard.release.registries.local_build import build_local

        run(lambda ctx: build_local(ctx, services=service, push_only=push_only, against=against),
            as_json=as_json, project_dir=project_dir, debug=debug)
        return
    from dockyard.release.commands.build import build as build_registry

    run(build_registry, as_json=as_json, project_dir=project_dir, debug=debug)


@app.command()
def promote(
    env: str = typer.Argument(..., help="The environment to promote into."),
    source: str = typer.Option(..., "--from", help="registry, or the environment to promote from."),
    service: list[str] = SERVICES, reason: Optional[str] = REASON, no_deploy: bool = NO_DEPLOY, yes: bool = YES,
    release_hold: bool = typer.Option(False, "--release-hold", help="Lift a rollback's hold on ENV."),
    no_rollback: bool = typer.Option(False, "--no-rollback", help="If the deploy fails verification, leave it: "
                                                                  "do not roll back to known-good by itself."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Promote SRC's current release into ENV: write it, deploy it, verify it."""
    from dockyard.release.commands import promotion

    run(lambda ctx: promotion.promote(ctx, env, source, services=service, reason=reason, deploy=not no_deploy,
                                      yes=yes, release_hold=release_hold, auto_rollback=not no_rollback),
        as_json=as_json, project_dir=project_dir, debug=debug)


@app.command()
def rollback(
    env: str = typer.Argument(..., help="The environment to roll back."),
    to: Optional[int] = typer.Option(None, "--to", help="Release to restore (default: the known-good one)."),
    service: list[str] = SERVICES, reason: Optional[str] = REASON, no_deploy: bool = NO_DEPLOY, yes: bool = YES,
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Point ENV back at an earlier release, without rebuilding; holds ENV against promotions."""
    from dockyard.release.commands import promotion

    run(lambda ctx: promotion.rollback(ctx, env, to=to, services=service, reason=reason, deploy=not no_deploy,
                                       yes=yes),
        as_json=as_json, project_dir=project_dir, debug=debug)


@app.command()
def abort(
    env: str = typer.Argument(..., help="The environment whose in-flight ECS deployments to stop."),
    reason: Optional[str] = REASON, yes: bool = YES,
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Stop ENV's in-flight ECS deployments with rollback; record its newest release as aborted; holds ENV."""
    from dockyard.release.commands import abort as aborting

    run(lambda ctx: aborting.abort(ctx, env, reason=reason, yes=yes), as_json=as_json, project_dir=project_dir,
        debug=debug)


@app.command()
def deploy(
    env: str = typer.Argument(..., help="The environment to deploy."),
    preview: bool = typer.Option(False, "--preview", help="Show what would change; change nothing."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Deploy ENV's current release (pulumi up), then verify what runs."""
    from dockyard.release.commands import promotion

    run(lambda ctx: promotion.deploy(ctx, env, preview=preview), as_json=as_json, project_dir=project_dir,
        debug=debug)


@app.command()
def status(
    envs: list[str] = typer.Argument(None, help="Environments (default: every app stack)."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Per environment and service: wanted release and digest, deployed, known-good, drift."""
    from dockyard.release.commands import inspect

    run(lambda ctx: inspect.status(ctx, envs or []), as_json=as_json, project_dir=project_dir, debug=debug)


@app.command()
def history(
    env: str = typer.Argument(..., help="The environment."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Show at most N releases."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """ENV's releases, newest first, with their labels."""
    from dockyard.release.commands import inspect

    run(lambda ctx: inspect.history(ctx, env, limit), as_json=as_json, project_dir=project_dir, debug=debug)


# ----------------------------------------------------------------------------- branch stacks


@branch_app.command("up")
def branch_up(
    branch: str = typer.Argument(..., help="The git branch."),
    base: str = typer.Option("dev", "--base", help="The environment to branch from."),
    image: list[str] = typer.Option([], "--image", help="SERVICE=REF: an image the branch's CI built."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Create or update the branch's stack from BASE's release and deploy it."""
    from dockyard.release.commands import branches

    run(lambda ctx: branches.up(ctx, branch, base=base, images=image), as_json=as_json,
        project_dir=project_dir, debug=debug)


@branch_app.command("preview")
def branch_preview(
    branch: str = typer.Argument(..., help="The git branch."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Print the branch stack's change set (a pull-request comment body)."""
    from dockyard.release.commands import branches

    run(lambda ctx: branches.preview(ctx, branch), as_json=as_json, project_dir=project_dir, debug=debug)


@branch_app.command("destroy")
def branch_destroy(
    branch: str = typer.Argument(..., help="The git branch (or its branch-<slug> stack)."),
    base: Optional[str] = typer.Option(None, "--base", help="Recreate a missing config file from this base."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Destroy the branch stack, remove it, its config file and its release."""
    from dockyard.release.commands import branches

    run(lambda ctx: branches.destroy(ctx, branch, base=base), as_json=as_json, project_dir=project_dir,
        debug=debug)


@branch_app.command("gc")
def branch_gc(
    keep: list[str] = typer.Option([], "--keep", help="A branch that still exists (repeatable)."),
    idle_for: Optional[str] = typer.Option(None, "--idle-for", help="Destroy stacks not updated for this long."),
    base: Optional[str] = typer.Option(None, "--base", help="Recreate missing config files from this base."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Destroy branch stacks whose branch is gone (or that sat idle too long)."""
    from dockyard.release.commands import branches

    run(lambda ctx: branches.gc(ctx, keep=keep, idle_for=idle_for, base=base), as_json=as_json,
        project_dir=project_dir, debug=debug)


@app.command()
def demo(
    workdir: Optional[Path] = typer.Option(None, "--dir", help="Workspace (default: .dockyard/demo)."),
    nomad: bool = typer.Option(False, "--nomad", help="Then run prod's release on the Nomad agent at NOMAD_ADDR "
                                                      "(./scripts/nomad up) as a third environment."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Walk the whole release story on the real engine and a local backend."""
    from dockyard.release.commands.demo import run_demo

    def story(ctx: Any) -> Any:
        result = run_demo(ctx.project.dir, (workdir or ctx.project.dir / ".dockyard" / "demo").resolve(), _log)
        if nomad:
            from dockyard.release.commands.demo_nomad import chapter

            chapter(result, _log)
        return result

    run(story, as_json=as_json, project_dir=project_dir, debug=debug)


def main() -> None:
    """Run the command; usage errors (unknown option, bad value) are exit 2, in JSON too with --json."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        _log("error: aborted")
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 - click's usage errors (typer vendors click; no public class)
        if not (hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2):
            raise
        message = err.format_message()
        if type(err).__name__ == "NoArgsIsHelpError":  # bare `dockyard`: the help, not an error line
            _log(message)
            sys.exit(2)
        if "--json" in sys.argv:
            typer.echo(json.dumps({"error": {"code": "bad-input", "message": message}}))
        _log(f"error: {message}")
        command = getattr(getattr(err, "ctx", None), "command_path", "dockyard")
        _log(f"hint: {command} --help")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
