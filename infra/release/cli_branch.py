"""`dockyard branch up|preview|destroy|gc`: per-branch preview stacks (branch-<slug>)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dockyard.release.options import DEBUG, JSON, PROJECT

branch_app = typer.Typer(help="Per-branch preview stacks (branch-<slug>).", no_args_is_help=True,
                         rich_markup_mode=None)


@branch_app.command("up")
def branch_up(
    branch: str = typer.Argument(..., help="The git branch."),
    base: str = typer.Option("dev", "--base", help="The environment to branch from."),
    image: list[str] = typer.Option([], "--image", help="SERVICE=REF: an image the branch's CI built."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Create or update the branch's stack from BASE's release and deploy it."""
    from dockyard.release import cli
    from dockyard.release.commands import branches

    cli.run(lambda ctx: branches.up(ctx, branch, base=base, images=image), as_json=as_json,
        project_dir=project_dir, debug=debug)


@branch_app.command("preview")
def branch_preview(
    branch: str = typer.Argument(..., help="The git branch."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Print the branch stack's change set (a pull-request comment body)."""
    from dockyard.release import cli
    from dockyard.release.commands import branches

    cli.run(lambda ctx: branches.preview(ctx, branch), as_json=as_json, project_dir=project_dir, debug=debug)


@branch_app.command("destroy")
def branch_destroy(
    branch: str = typer.Argument(..., help="The git branch (or its branch-<slug> stack)."),
    base: Optional[str] = typer.Option(None, "--base", help="Recreate a missing config file from this base."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Destroy the branch stack, remove it, its config file and its release."""
    from dockyard.release import cli
    from dockyard.release.commands import branches

    cli.run(lambda ctx: branches.destroy(ctx, branch, base=base), as_json=as_json, project_dir=project_dir,
        debug=debug)


@branch_app.command("gc")
def branch_gc(
    keep: list[str] = typer.Option([], "--keep", help="A branch that still exists (repeatable)."),
    idle_for: Optional[str] = typer.Option(None, "--idle-for", help="Destroy stacks not updated for this long."),
    base: Optional[str] = typer.Option(None, "--base", help="Recreate missing config files from this base."),
    as_json: bool = JSON, project_dir: Optional[Path] = PROJECT, debug: bool = DEBUG,
) -> None:
    """Destroy branch stacks whose branch is gone (or that sat idle too long)."""
    from dockyard.release import cli
    from dockyard.release.commands import branches

    cli.run(lambda ctx: branches.gc(ctx, keep=keep, idle_for=idle_for, base=base), as_json=as_json,
        project_dir=project_dir, debug=debug)
