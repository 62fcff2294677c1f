"""Command-line entry point of `dockyard`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

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
)


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


def main() -> None:
    app()
