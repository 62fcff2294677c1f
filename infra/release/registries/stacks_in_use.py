"""Every image the project's other stacks released or run, read from the backend, not from the checkout.

CI destroys previews from a clean checkout, where the config files of the other open branches do not
exist: the stacks to ask are the backend's (every stack of the project), and a branch stack without a
file here has its release store where `branch up` put it, beside the one being destroyed. A stack
whose images cannot be read makes every image "possibly in use".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dockyard import naming
from dockyard.config import AppSettings
from dockyard.errors import BadInput, DockyardError
from dockyard.release.context import Context
from dockyard.release.project import Environment


def _released(ctx: Context, env: Environment) -> list[str]:
    return [ref for stored in ctx.store(env).history() for ref in stored.release.image_strings().values()]


def derived_branch(template: Environment, stack: str) -> Environment:
    """A branch stack's settings as `branch up` wrote them from the same base as `template` (another branch)."""
    settings = template.settings
    assert isinstance(settings, AppSettings)
    release_dir = str(Path(settings.release_dir).parent / stack)
    return Environment(name=stack, settings=dataclasses.replace(
        settings, release_dir=release_dir, release_parameter=naming.release_parameter(stack)),
        config_file=template.config_file.with_name(f"Pulumi.{stack}.yaml"))


def _running(ctx: Context, name: str) -> list[str]:
    try:
        outputs = ctx.deployer.outputs(name)
    except BadInput:  # never deployed to this backend: it runs nothing
        return []
    return [str(v) for v in (outputs.get("images") or {}).values()]


def images_in_use(ctx: Context, branch: Environment) -> tuple[list[str], list[str]]:
    """(images every other stack released or runs, the stacks that could not be read and why)."""
    refs: list[str] = []
    unreadable: list[str] = []
    try:
        in_backend = {s.name for s in ctx.deployer.stacks()}
    except DockyardError as err:
        return [], [f"cannot list the backend's stacks: {err.message}"]
    here = set(ctx.project.stack_names())
    for name in sorted((in_backend | here) - {branch.name}):
        try:
            if name in here:
                env = ctx.project.environment(name)
                refs += _running(ctx, name) if env.store_kind == "stack" else _released(ctx, env)
            elif naming.is_branch_stack(name):
                refs += _released(ctx, derived_branch(branch, name)) + _running(ctx, name)
            else:
                unreadable.append(f"{name} is in the backend but Pulumi.{name}.yaml is not in this checkout, so "
                                  "its release history cannot be read")
        except DockyardError as err:
            unreadable.append(f"cannot read what {name} runs: {err.message}")
    return refs, unreadable
