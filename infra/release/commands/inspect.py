"""status and history: what each environment wants, what it last deployed, what is known good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard import targets
from dockyard.errors import BadInput, DockyardError
from dockyard.release.trust import gate as trust
from dockyard.release.context import Context
from dockyard.release.project import Environment, pin_hint
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, StoredRelease


@dataclass
class EnvironmentStatus:
    env: str
    source: str  # ssm | file | stack
    version: int | None
    images: dict[str, str]
    deployed: int | None
    known_good: int | None
    held: dict[str, Any] | None
    error: str | None = None
    rollback: dict[str, Any] | None = None  # the current release undoes another: which, and why
    verified: dict[str, Any] | None = None  # service -> signer, key id or identity, attestation, commit
    trust: str | None = None  # a warning: this environment promotes images nobody proved
    running: dict[str, Any] | None = None  # Nomad: job, job version, wanted vs running allocations per service
    window: Any = None  # insights.windows.WindowState: may promotions happen now
    commits: dict[str, str] | None = None  # service -> the commit its image records (its revision label)

    @property
    def drift(self) -> bool:
        """The newest release is not the one deployed."""
        return self.version is not None and self.deployed != self.version

    @property
    def unverified(self) -> bool:
        """The release deployed last was not verified (dockyard could not look, or it failed)."""
        return self.deployed is not None and self.deployed != self.known_good

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version, "images": self.images, "deployed": self.deployed,
                                "knownGood": self.known_good, "source": self.source, "drift": self.drift,
                                "unverified": self.unverified,
                                "held": self.held, "rollback": self.rollback, "verified": self.verified or {},
                                "trust": self.trust, "commits": self.commits or {}}
        if self.error:
            data["error"] = self.error
        if self.running is not None:
            data["running"] = self.running
        if self.window is not None:
            data["window"] = self.window.to_json()
        return data


@dataclass
class StatusResult:
    environments: list[EnvironmentStatus]

    def to_json(self) -> dict[str, Any]:
        return {"environments": {e.env: e.to_json() for e in self.environments}}

    def table(self) -> tuple[list[str], list[list[str]]]:
        header = ["ENV", "SERVICE", "WANTED", "DIGEST", "COMMIT", "DEPLOYED", "KNOWN-GOOD", "STATE"]
        rows = []
        for e in self.environments:
            state = "error: " + e.error if e.error else ("held" if e.held else ("drift" if e.drift else "ok"))
            state = "unverified" if state == "ok" and e.unverified else state
            if not e.images:
                rows.append([e.env, "-", _v(e.version), "-", "-", _v(e.deployed), _v(e.known_good), state])
            for service, ref in sorted(e.images.items()):
                digest = ref.split("@", 1)[1][:19] if "@" in ref else ref
                commit = (e.commits or {}).get(service, "-")[:12]
                rows.append([e.env, service, _v(e.version), digest, commit, _v(e.deployed), _v(e.known_good), state])
        if any(e.running for e in self.environments):  # Nomad: running/wanted allocations, from the job
            header.insert(-1, "RUNNING")
            counts = {(e.env, s): f"{c['running']}/{c['wanted']}" for e in self.environments
                      for s, c in ((e.running or {}).get("services") or {}).items()}
            rows = [row[:-1] + [counts.get((row[0], row[1]), "-"), row[-1]] for row in rows]
        if any(e.window is not None and e.window.configured for e in self.environments):  # freeze windows
            header.append("WINDOW")
            states = {e.env: e.window.describe() if e.window is not None else "-" for e in self.environments}
            rows = [row + [states.get(row[0], "-")] for row in rows]
        return header, rows


def _v(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


@dataclass
class HistoryResult:
    env: str
    releases: list[StoredRelease]

    def outcomes(self) -> dict[int, str]:
        """Releases a later one undid: `failed` (dockyard rolled it back after a failed verification),
        `aborted` (`dockyard abort`), `reverted` (the orchestrator went back on its own), `rolled back`."""
        words = {"automatic": "failed", "aborted": "aborted", "reverted": "reverted", "manual": "rolled back"}
        return {r.release.rollback.of: words[r.release.rollback.cause]
                for r in reversed(self.releases) if r.release.rollback is not None}

    def to_json(self) -> dict[str, Any]:
        outcomes = self.outcomes()
        return {"env": self.env, "releases": [
            {"version": r.version, "images": r.release.image_strings(), "labels": list(r.labels),
             "source": r.release.source, "reason": r.release.reason, "by": r.release.by, "at": r.release.at,
             "commit": r.release.commit, "commits": r.release.commits(), "outcome": outcomes.get(r.version),
             "unverified": r.release.unverified,
             "rollback": r.release.rollback.to_dict() if r.release.rollback else None,
             "changelog": {s: c.to_dict() for s, c in sorted(r.release.changelog.items())},
             "override": r.release.override.to_dict() if r.release.override else None,
             "verified": {s: v.to_dict() for s, v in sorted(r.release.verified.items())}} for r in self.releases]}

    def table(self) -> tuple[list[str], list[list[str]]]:
        header = ["VERSION", "LABELS", "OUTCOME", "SOURCE", "BY", "AT", "COMMITS", "REASON"]
        outcomes = self.outcomes()
        rows = [[f"v{r.version}", ",".join(r.labels) or "-", outcomes.get(r.version, "-"), r.release.source or "-",
                 r.release.by or "-", r.release.at or "-", _commits(r), _reason(r)] for r in self.releases]
        return header, rows


def _commits(r: StoredRelease) -> str:
    """Per changed service, the commits to its inputs that arrived (+) or left (-); `?` where not known."""
    parts = []
    for service, c in sorted(r.release.changelog.items()):
        if c.commits is None:
            parts.append(f"{service} ?")
        else:
            parts.append(f"{service} +{c.commits}" + (f"/-{c.leaving}" if c.leaving else ""))
    return ", ".join(parts) or "-"


def _reason(r: StoredRelease) -> str:
    reason = r.release.reason or "-"
    if r.release.override is not None:
        reason += f" [window {r.release.override.window} overridden: {r.release.override.reason}]"
    return reason


def environment_status(ctx: Context, env: Environment) -> EnvironmentStatus:
    if env.follows_stack:
        try:
            images = dict(ctx.deployer.outputs(env.name).get("images") or {})
        except DockyardError as err:
            return EnvironmentStatus(env.name, "stack", None, {}, None, None, None, error=err.message)
        return EnvironmentStatus(env.name, "stack", None, images, None, None, None)
    store = ctx.store(env)
    current = store.current()
    labels = store.labels()
    hold = store.hold()
    return EnvironmentStatus(env=env.name, source=env.store_kind, version=current.version if current else None,
                             images=current.release.image_strings() if current else {},
                             deployed=labels.get(DEPLOYED), known_good=labels.get(KNOWN_GOOD),
                             held=hold.to_dict() if hold else None,
                             rollback=current.release.rollback.to_dict() if current and current.release.rollback
                             else None,
                             verified={s: v.to_dict() for s, v in sorted(current.release.verified.items())}
                             if current else {},
                             trust=trust.unverified_warning(env), window=_window(ctx, env),
                             commits=current.release.commits() if current else {},
                             **targets.of(env.settings).running(env))


def _window(ctx: Context, env: Environment) -> Any:
    from dockyard.release.insights.hooks import window_state

    return window_state(ctx, env)


def status(ctx: Context, envs: list[str]) -> StatusResult:
    names = envs or [n for n in ctx.project.stack_names() if not ctx.project.environment(n).is_registry]
    environments = [ctx.project.app_environment(n) for n in names]  # all validated before any read
    result = StatusResult([environment_status(ctx, e) for e in environments])
    for e in result.environments:
        if e.trust:
            ctx.log(f"warning: {e.env}: {e.trust}")
    return result


def history(ctx: Context, env_name: str, limit: int | None) -> HistoryResult:
    if limit is not None and limit < 1:
        raise BadInput(f"--limit {limit}: expected 1 or more")
    env = ctx.project.app_environment(env_name)
    if env.follows_stack:
        raise BadInput(f"{env_name} follows the registry stack and has no release history", hint=pin_hint(env_name))
    return HistoryResult(env=env_name, releases=ctx.store(env).history(limit))
