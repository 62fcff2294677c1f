"""The options every `dockyard` command shares, defined once for cli.py and cli_branch.py."""

from __future__ import annotations

import typer

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout; logs go to stderr.")
PROJECT = typer.Option(None, "--project-dir", help="The project directory (default: found from the current one).")
DEBUG = typer.Option(False, "--debug", help="Show a traceback for unexpected errors.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
SERVICES = typer.Option([], "--service", help="Only these services (repeatable).")
REASON = typer.Option(None, "--reason", help="Why: recorded in the release.")
NO_DEPLOY = typer.Option(False, "--no-deploy", help="Write the release but do not deploy it.")
