"""Per-branch preview stacks: `branch-<slug>`, ephemeral, sharing a base environment's infrastructure."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dockyard import naming, targets
from dockyard.config import AppSettings
from dockyard.errors import BadInput, DockyardError, ImageRefError
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.registries.branch_images import ImageRemoval, remove_branch_images
from dockyard.release.context import Context, read_source
from dockyard.release.project import Environment, raw_stack_config, split_secrets
from dockyard.release.registries import checks as registries
from dockyard.release.trust import gate as trust
from dockyard.release.commands.promotion import deploy_release

PREVIEW_MARKER = "<!-- dockyard-preview:{stack} -->"
_DURATION = re.compile(r"^(\d+)([mhd])$")


@dataclass
class BranchResult:
    branch: str
    stack: str
    action: str
    version: int | None = None
    images: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    changes: dict[str, int] = field(default_factory=dict)
    text: str = ""
    removal: ImageRemoval = field(default_factory=ImageRemoval)  # destroy: the branch-only images

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"branch": self.branch, "stack": self.stack, "action": self.action}
        if self.action == "up":
            data.update(version=self.version, images=self.images, url=self.url, deployed=True)
        if self.action == "preview":
            data.update(changes=self.changes, comment=self.comment())
        if self.action == "destroy":
            data.update(destroyed=True, **self.removal.to_json())
        return data

    def comment(self) -> str:
        """A pull-request comment body; the marker lets CI find and edit the same comment on each push."""
        summary = ", ".join(f"{op} {n}" for op, n in sorted(self.changes.items()) if op != "same") or "no changes"
        return (f"{PREVIEW_MARKER.format(stack=self.stack)}\n### dockyard preview: `{self.stack}`\n\n"
                f"Changes: {summary}\n\n<details><summary>pulumi preview</summary>\n\n```\n"
                f"{self.text.strip()[-60000:]}\n```\n</details>\n")

    def lines(self) -> list[str]:
        if self.action == "up":
            return [f"Branch stack {self.stack} is up (release {self.version}).",
                    f"URL: {self.url or '(no routed service)'}", f"Remove it with: dockyard branch destroy {self.branch}"]
        if self.action == "preview":
            return [self.comment()]
        return [f"Branch stack {self.stack} destroyed: resources, stack, config file and release removed.",
                *self.removal.lines()]


@dataclass
class GcResult:
    destroyed: list[str]
    kept: list[str]
    removal: ImageRemoval = field(default_factory=ImageRemoval)

    def to_json(self) -> dict[str, Any]:
        return {"destroyed": self.destroyed, "kept": self.kept, **self.removal.to_json()}

    def lines(self) -> list[str]:
        return [f"Destroyed {len(self.destroyed)} branch stack(s): {', '.join(self.destroyed) or 'none'}.",
                f"Kept: {', '.join(self.kept) or 'none'}.", *self.removal.lines()]


def parse_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        service, sep, ref = value.partition("=")
        if not sep or not service or not ref:
            raise BadInput(f"--image {value!r}: expected SERVICE=REF, e.g. web=ghcr.io/acme/web@sha256:<digest>")
        try:
            overrides[service] = str(ImageRef.parse_pinned(ref, what=f"--image {service}"))
        except ImageRefError as err:
            raise BadInput(err.message, hint=err.hint) from None
    return overrides


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text or "")
    if not match:
        raise BadInput(f"--idle-for {text!r}: expected a duration like 30m, 12h or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]


def branch_config(ctx: Context, base: Environment, stack: str) -> tuple[dict[str, Any], list[str]]:
    """The branch's stack config: the base's, made ephemeral, sharing the base, with its own release.

    Returns the plain config and the `--path` keys of its secrets, which only the engine can
    copy: ciphertext is bound to the stack that encrypted it.
    """
    settings = base.settings
    assert isinstance(settings, AppSettings)
    config, secret_paths = {}, []
    for key, value in raw_stack_config(base.config_file).items():
        plain, paths = split_secrets(key, value)
        secret_paths += paths
        if plain is not None:
            config[key] = plain
    config["dockyard:ephemeral"] = True
    for key in ("dockyard:releaseParameter", "dockyard:releaseDir", "dockyard:registryStack"):
        config.pop(key, None)
    if settings.image_source == "file":
        config["dockyard:imageSource"] = "file"
        # Beside the base's releases, so a relative or absolute base directory stays so.
        config["dockyard:releaseDir"] = str(Path(settings.release_dir).parent / stack)
    else:
        config["dockyard:imageSource"] = "ssm"
        config["dockyard:releaseParameter"] = naming.release_parameter(stack)
    targets.of(settings).branch_config(ctx, base, stack, config)
    return config, secret_paths


def _write_branch_config(ctx: Context, base: Environment, stack: str, *, listener_port: int | None = None) -> None:
    config, secret_paths = branch_config(ctx, base, stack)
    if listener_port is not None:
        config["dockyard:listenerPort"] = listener_port
    ctx.project.write_stack_config(stack, config)
    if secret_paths:
        ctx.deployer.copy_secret_config(base.name, stack, secret_paths)


def up(ctx: Context, branch: str, *, base: str, images: list[str]) -> BranchResult:
    stack = naming.branch_stack(branch)
    overrides = parse_overrides(images)
    base_env = ctx.project.app_environment(base)
    if naming.is_branch_stack(base):
        raise BadInput(f"--base {base} is itself a branch stack", hint="branch from an environment such as dev")
    unknown = sorted(set(overrides) - set(base_env.settings.services))
    if unknown:
        raise BadInput(f"--image {unknown[0]}: {base} runs no such service",
                       hint=f"it runs {', '.join(sorted(base_env.settings.services))}")
    seed = read_source(ctx, base)
    registries.check_present(ctx, overrides, fix="push it first (dockyard build --local --push-only)")
    # The branch's own images answer to the base's policy (the branch stack inherits its dockyard:trust).
    proven = trust.check(ctx, base_env, overrides, verb="deployed",
                         commit=os.environ.get("DOCKYARD_COMMIT") or os.environ.get("GITHUB_SHA"))
    port = targets.of(base_env.settings).branch_listener_port(ctx, base_env, stack)
    ctx.log(f"Opening {stack} from {seed.label}...")
    _write_branch_config(ctx, base_env, stack, listener_port=port)
    env = ctx.project.app_environment(stack)
    store = ctx.store(env)
    wanted = {**seed.release.image_strings(), **overrides}
    current = store.current()
    if current is None or current.release.image_strings() != wanted:
        release = Release(images={s: ImageRef.parse_pinned(r) for s, r in wanted.items()},
                          source=seed.label if not overrides else f"{seed.label}+branch", by=ctx.user,
                          reason=f"branch {branch}", at=ctx.timestamp(), commit=seed.release.commit,
                          verified=trust.merged(seed.release, proven, wanted))
        version = store.append(release, expected=current.version if current else None).version
    else:
        version = current.version
    deployed = deploy_release(ctx, env, store, version, wanted)
    return BranchResult(branch=branch, stack=stack, action="up", version=version, images=wanted,
                        url=deployed.outputs.get("url"))


def _existing_branch(ctx: Context, branch: str, *, base: str | None = None) -> tuple[str, Environment]:
    """The branch's stack and settings; refuses anything that is not a dockyard branch stack.

    CI runners start from a clean checkout without the branch's config file: with
    `base`, it is written again from the base (as `branch up` wrote it) so the
    stack can still be destroyed.
    """
    if ctx.project.config_file(branch).is_file() and not naming.is_branch_stack(branch):
        raise BadInput(f"{branch} is not a branch stack; dockyard branch commands only touch branch-* stacks")
    # A branch-<slug> stack name is taken as it is, even without its config file (a clean checkout).
    stack = branch if naming.is_branch_stack(branch) else naming.branch_stack(branch)
    if not ctx.project.config_file(stack).is_file():
        if base is None:
            raise BadInput(f"no branch stack for {branch!r} ({stack})",
                           hint=f"branch stacks here: {', '.join(ctx.project.branch_stacks()) or 'none'}; "
                                "pass --base to act on one created elsewhere")
        _write_branch_config(ctx, ctx.project.app_environment(base), stack)
    env = ctx.project.app_environment(stack)
    if not (isinstance(env.settings, AppSettings) and env.settings.ephemeral):
        raise BadInput(f"{stack} is not ephemeral; dockyard only destroys branch stacks it created")
    return stack, env


def preview(ctx: Context, branch: str) -> BranchResult:
    stack, _ = _existing_branch(ctx, branch)
    result = ctx.deployer.preview(stack)
    return BranchResult(branch=branch, stack=stack, action="preview", changes=result.changes, text=result.text)


def destroy(ctx: Context, branch: str, *, base: str | None = None) -> BranchResult:
    stack, env = _existing_branch(ctx, branch, base=base)
    ctx.log(f"Destroying {stack}...")
    try:
        ctx.deployer.destroy(stack)
    except BadInput as err:  # the stack never made it to the backend: clean up the rest anyway
        ctx.log(f"{stack}: {err.message}; removing its config and release")
    removal = remove_branch_images(ctx, env)  # reads the branch's release history: before it is deleted
    ctx.store(env).delete()
    targets.of(env.settings).branch_destroyed(ctx, env)
    env.config_file.unlink(missing_ok=True)
    return BranchResult(branch=branch, stack=stack, action="destroy", removal=removal)


def gc(ctx: Context, *, keep: list[str], idle_for: str | None, base: str | None = None) -> GcResult:
    if not keep and idle_for is None:
        raise BadInput("branch gc needs --keep BRANCH... (the branches that still exist) or --idle-for DURATION")
    max_idle = parse_duration(idle_for) if idle_for is not None else None
    kept_stacks = {naming.branch_stack(b) for b in keep}
    summaries = {s.name: s for s in ctx.deployer.stacks() if naming.is_branch_stack(s.name)}
    candidates = sorted(set(summaries) | set(ctx.project.branch_stacks()))
    now = ctx.now()
    destroyed, kept, removal = [], [], ImageRemoval()
    for stack in candidates:
        summary = summaries.get(stack)
        if max_idle is None:
            idle = True
        elif summary is None or summary.last_update is None:
            idle = False  # never deployed to this backend, or no update time: nothing says it is idle
        else:
            idle = now - _aware(summary.last_update) > max_idle
        if stack in kept_stacks or (max_idle is not None and not idle) or (summary and summary.update_in_progress):
            kept.append(stack)
            continue
        if not ctx.project.config_file(stack).is_file() and base is None:
            ctx.log(f"{stack}: no Pulumi.{stack}.yaml here and no --base to recreate it; left alone")
            kept.append(stack)
            continue
        try:
            removal += destroy(ctx, stack, base=base).removal
            destroyed.append(stack)
        except DockyardError as err:
            ctx.log(f"{stack}: not destroyed: {err.message}")
            kept.append(stack)
    return GcResult(destroyed=destroyed, kept=kept, removal=removal)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
