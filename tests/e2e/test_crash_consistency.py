"""Kill the real `dockyard` (and the engine it runs) with SIGKILL at every step, run the same command again,
and check it converged: on the real engine, a file backend, the file release store and the loopback registry.

Each run of the command leads its own process group, so the fault (DOCKYARD_FAULT=<step>) takes the
engine down with it, as a cancelled CI job does, and leaves the stack lock behind. The outcome of each
row is printed as a table (run with -s); README "Crash consistency" shows it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dockyard import naming
from tests.e2e.conftest import DOCKYARD, image, rendered_deployments

pytestmark = pytest.mark.e2e

PROMOTE_STEPS = ("after-release-written", "after-tag", "during-up", "after-up-before-label", "during-verify")
ROWS: list[tuple[str, str, str]] = []
ALONE = "during-up-alone"  # the command killed alone, not its process group: its engine runs on


def run(ws, *args: str, fault: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in ws.env.items() if k != "DOCKYARD_FAULT"}
    if fault:
        env["DOCKYARD_FAULT"] = fault
    proc = subprocess.run([*DOCKYARD, *args, "--project-dir", str(ws.dir)], capture_output=True, text=True,
                          env=env, cwd=ws.dir, timeout=ws.timeout, start_new_session=True)
    return proc.returncode, proc.stdout, proc.stderr


def killed(ws, step: str, *args: str) -> None:
    code, _, err = run(ws, *args, fault=step)
    assert code == -signal.SIGKILL, f"DOCKYARD_FAULT={step} did not kill `{' '.join(args)}` (exit {code}): {err[-600:]}"


def history(ws, stack: str) -> list[dict]:
    code, out, err = run(ws, "history", stack, "--json")
    assert code == 0, err
    return json.loads(out)["releases"]


def locks(ws, stack: str) -> list[Path]:
    return [p for p in (ws.dir / "state" / ".pulumi" / "locks").glob("**/*.json") if p.parent.name == stack]


def build(ws, name: str) -> dict[str, str]:
    ws.registry(name)
    code, out, err = run(ws, "build", "--json")
    assert code == 0, err
    return json.loads(out)["images"]


@pytest.fixture(scope="module")
def builds(workspace):
    """Every scenario's stack on release 1 of build crash-1; then the registry moves to crash-2."""
    first = build(workspace, "crash-1")
    for step in (*PROMOTE_STEPS, "rollback", ALONE):
        workspace.app(stack_of(step))
        code, _, err = run(workspace, "promote", stack_of(step), "--from", "registry", "--yes")
        assert code == 0, err
    second = build(workspace, "crash-2")
    yield first, second
    table = ["| step | command | after the kill | after the re-run |", "|---|---|---|---|"]
    table += [f"| `{step}` | `{command}` | killed (SIGKILL) | {outcome} |" for step, command, outcome in ROWS]
    print("\n" + "\n".join(table))
    out = os.environ.get("DOCKYARD_CRASH_TABLE")
    if out:
        Path(out).write_text("\n".join(table) + "\n")


def stack_of(step: str) -> str:
    return "k" + "".join(word[0] for word in step.split("-"))  # after-tag -> kat


def tags(stack: str, version: int) -> set[str]:
    from tests.e2e.conftest import _REGISTRY

    registry = _REGISTRY[0]
    return {service for service in ("web", "worker")
            if f"release-{stack}-v{version}" in registry.tags(f"dockyard-e2e/{service}")}


@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_promote_killed_at_each_step_converges_when_run_again(workspace, builds, step):
    _, second = builds
    stack = stack_of(step)
    command = ("promote", stack, "--from", "registry", "--yes")
    killed(workspace, step, *command)
    if step == "during-up":
        assert locks(workspace, stack), "the killed engine left no lock: the fault fired before the update began"
    code, out, err = run(workspace, *command, "--json")
    assert code == 0, err
    result = json.loads(out)
    releases = history(workspace, stack)
    assert [r["version"] for r in releases] == [2, 1], "a release was lost or written twice"
    assert sorted(releases[0]["labels"]) == ["deployed", "known-good"] and result["verified"]
    assert rendered_deployments(workspace.dir / "rendered" / stack) == second
    assert tags(stack, 2) == {"web", "worker"}
    assert locks(workspace, stack) == []
    lock = "; the dead engine's lock released" if step == "during-up" else ""
    ROWS.append((step, f"promote {stack} --from registry", "exit 0: release 2 once, deployed, tagged "
                 f"release-{stack}-v2, labelled deployed + known-good, verified{lock}"))


def test_promote_killed_alone_during_up_converges_once_its_engine_has_stopped(workspace, builds):
    """Only the command dies (a runner that kills one process): the engine it started runs on without the
    program, which lived in the command (dockyard.release.program_host), so it ends the update and releases
    the stack's lock itself; the same command then finishes the release."""
    _, second = builds
    stack = stack_of(ALONE)
    command = ("promote", stack, "--from", "registry", "--yes")
    env = {**workspace.env, "DOCKYARD_FAULT": "during-up"}
    proc = subprocess.run([*DOCKYARD, *command, "--project-dir", str(workspace.dir)], capture_output=True,
                          text=True, env=env, cwd=workspace.dir, timeout=workspace.timeout)  # no session of its own
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-600:]
    deadline = time.monotonic() + 120
    while locks(workspace, stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert locks(workspace, stack) == [], "the engine left without its program kept the stack locked"
    code, out, err = run(workspace, *command, "--json")
    assert code == 0, err
    releases = history(workspace, stack)
    assert [r["version"] for r in releases] == [2, 1], "a release was lost or written twice"
    assert sorted(releases[0]["labels"]) == ["deployed", "known-good"] and json.loads(out)["verified"]
    assert rendered_deployments(workspace.dir / "rendered" / stack) == second
    assert tags(stack, 2) == {"web", "worker"}
    ROWS.append(("during-up, the command alone", f"promote {stack} --from registry", "exit 0: release 2 once, "
                 "deployed, tagged, labelled deployed + known-good, verified; the engine, left without its "
                 "program, had ended the update and released its lock"))


def test_rollback_killed_after_writing_converges_when_run_again(workspace, builds):
    first, _ = builds
    stack = stack_of("rollback")
    assert run(workspace, "promote", stack, "--from", "registry", "--yes")[0] == 0
    command = ("rollback", stack, "--to", "1", "--yes")
    killed(workspace, "after-release-written", *command)
    code, _, err = run(workspace, *command)
    assert code == 0, err
    releases = history(workspace, stack)
    assert [r["version"] for r in releases] == [3, 2, 1]
    assert sorted(releases[0]["labels"]) == ["deployed", "known-good"]
    assert rendered_deployments(workspace.dir / "rendered" / stack) == first
    code, out, _ = run(workspace, "status", stack, "--json")
    assert json.loads(out)["environments"][stack]["held"] is not None
    assert tags(stack, 3) == {"web", "worker"}
    ROWS.append(("after-release-written", f"rollback {stack} --to 1", "exit 0: release 3 once, held, deployed, "
                 "tagged, labelled, verified"))


def test_branch_up_and_destroy_killed_in_the_engine_converge_when_run_again(workspace, builds):
    base = stack_of("after-tag")
    override = image("web", "crash-branch")
    command = ("branch", "up", "crash/kill", "--base", base, "--image", f"web={override}")
    killed(workspace, "during-branch-up", *command)
    stack = naming.branch_stack("crash/kill")
    assert locks(workspace, stack), "the killed engine left no lock: the fault fired too late to test recovery"
    code, out, err = run(workspace, *command, "--json")
    assert code == 0, err
    assert [r["version"] for r in history(workspace, stack)] == [1]
    assert rendered_deployments(workspace.dir / "rendered" / stack)["web"] == override
    assert locks(workspace, stack) == []
    ROWS.append(("during-branch-up", "branch up crash/kill", "exit 0: stack up, release 1 once, rendered; "
                 "the dead engine's lock released"))
    killed(workspace, "during-branch-destroy", "branch", "destroy", "crash/kill")
    code, _, err = run(workspace, "branch", "destroy", "crash/kill", "--json")
    assert code == 0, err
    assert stack not in workspace.stacks() and not (workspace.dir / f"Pulumi.{stack}.yaml").exists()
    assert not rendered_deployments(workspace.dir / "rendered" / stack)
    assert locks(workspace, stack) == []
    ROWS.append(("during-branch-destroy", "branch destroy crash/kill", "exit 0: resources, stack, config and "
                 "release gone; the dead engine's lock released"))
