"""The few calls the release commands make into the insights: the window gate, the changelog, events.

Each is one line at its call site. None of them can fail a rollback: the changelog and the events
catch everything; only the window gate refuses, and only a promotion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.errors import BadInput, Conflict
from dockyard.manifest import Override, Release, Verification
from dockyard.release.insights.changelog import Changelog, compute
from dockyard.release.insights.notify import Event, Notifier
from dockyard.release.insights.windows import WindowState, state


def check_flags(override_window: bool, reason: str | None) -> None:
    """--override-window needs --reason: the release records both."""
    if override_window and not (reason or "").strip():
        raise BadInput("--override-window needs --reason TEXT: the release records why the window was overridden",
                       hint="dockyard promote ENV --from SRC --override-window --reason 'hotfix for …'")


def window_state(ctx: Any, env: Any) -> WindowState:
    return state(getattr(env.settings, "windows", None), ctx.now())


def window_gate(ctx: Any, env: Any, *, override: bool, reason: str | None, source: str) -> Override | None:
    """Refuse a promotion into a closed environment (exit 3), unless overridden; returns what to record."""
    window = window_state(ctx, env)
    if window.open:
        return None
    if not override:
        raise Conflict(f"{env.name} is {window.describe()}: promotions into it wait until then",
                       hint=f"promote anyway with: dockyard promote {env.name} --from {source} --override-window "
                            "--reason TEXT (recorded in the release)")
    ctx.log(f"{env.name} is {window.describe()}; promoting anyway (--override-window: {reason})")
    return Override(window=window.window or "allow windows", reason=reason or "")


def changelog(ctx: Any, old: Release | None, new_images: Mapping[str, str], *,
              proven: Mapping[str, Verification] | None = None,
              recorded: Mapping[str, Verification] | None = None, direction: str = "arrive",
              show: bool = True, commits: Mapping[str, str] | None = None) -> Changelog:
    """The changelog of `old` -> `new_images` (changed services only); `show`: log it, for the question that
    follows (with --yes there is none, and the result's text carries it). `commits`: the new images' commits
    already known (their revision labels, read when the release was checked). Never raises."""
    try:
        log = compute(ctx, old, new_images, proven, new_recorded=recorded, new_commits=commits)
    except Exception as err:  # noqa: BLE001 - a changelog never stops a promotion or a rollback
        ctx.log(f"changelog: not available ({type(err).__name__}: {err})")
        return Changelog()
    for line in log.lines(direction) if show else []:
        ctx.log(f"  {line}")
    return log


def notify(ctx: Any, env: Any, kind: str, text: str, **fields: Any) -> None:
    """Queue an event for `env`'s webhooks; returns at once and never raises."""
    try:
        settings = getattr(env.settings, "notify", None)
        if settings is None:
            return
        if getattr(ctx, "notifier", None) is None:
            ctx.notifier = Notifier(ctx.log)
        ctx.notifier.send(settings, Event(kind=kind, env=env.name, text=text, at=ctx.timestamp(), by=ctx.user,
                                          fields={k: v for k, v in fields.items() if v is not None}))
    except Exception as err:  # noqa: BLE001 - a notification never fails a command
        ctx.log(f"warning: notify: {kind} event for {getattr(env, 'name', '?')} not queued: {err}")


def flush(ctx: Any, wait: float | None = None) -> None:
    """At the end of a command: let queued events go out, for a bounded time."""
    notifier = getattr(ctx, "notifier", None)
    if notifier is not None:
        notifier.close(wait)


def branch_changelog(ctx: Any, branch_release: Release | None) -> Changelog | None:
    """What a branch stack runs that its base does not: the commits its own images bring over the base
    release it was seeded from (its `source`, e.g. `dev:v3+branch`). None when that cannot be told."""
    try:
        source = (branch_release.source or "") if branch_release else ""
        base_name, _, version = source.split("+", 1)[0].partition(":v")
        if not base_name or not version.isdigit():
            return None
        base = ctx.store(ctx.project.app_environment(base_name)).get(int(version))
        if base is None:
            return None
        return compute(ctx, base.release, branch_release.image_strings(), new_recorded=branch_release.verified)
    except Exception as err:  # noqa: BLE001 - a comment without a changelog is still a comment
        ctx.log(f"changelog: not available ({type(err).__name__}: {err})")
        return None


def markdown(log: Changelog | None) -> str:
    """The changelog as a pull-request comment section ('' when there is nothing to say)."""
    if log is None or not log.services:
        return ""
    lines = ["#### Commits this preview runs that its base does not", ""]
    for change in log.services:
        if change.arriving_total is None:
            lines.append(f"- **{change.service}**: {_plain(change.note or 'history not available')}")
            continue
        lines.append(f"- **{change.service}**: {change.arriving_total} commit(s) to its build inputs")
        lines += [f"  - `{c.short}` {_plain(c.subject)} ({_plain(c.author)}, {c.date[:10]})" for c in change.arriving]
        if change.arriving_total > len(change.arriving):
            lines.append(f"  - ... and {change.arriving_total - len(change.arriving)} more")
    return "\n".join(lines) + "\n\n"


def _plain(text: str) -> str:
    """Commit text as inert markdown: no HTML (the comment's marker is an HTML comment), no mentions."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("@", "@\u200b").replace("`", "'")
