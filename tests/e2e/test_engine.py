"""The whole flow on the real Pulumi engine: registry, StackReference, rendering, the command, locking."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from dockyard.targets.kubernetes.pod_security import restricted_violations
from tests.e2e.conftest import image, rendered_deployments

pytestmark = pytest.mark.e2e


def test_registry_in_external_mode_records_pinned_images(workspace):
    workspace.registry("release-1")
    code, out, err = workspace.dockyard("build", "--json")
    assert code == 0, err
    assert out["images"] == {"web": image("web", "release-1"), "worker": image("worker", "release-1")}
    assert workspace.outputs("registry")["images"] == out["images"]


def test_app_follows_the_registry_through_a_real_stack_reference_and_renders(workspace):
    workspace.app("dev", **{"dockyard:imageSource": "stack"})
    code, out, err = workspace.dockyard("deploy", "dev", "--json")
    assert code == 0, err
    render_dir = workspace.dir / "rendered" / "dev"
    assert rendered_deployments(render_dir) == {"web": image("web", "release-1"),
                                                "worker": image("worker", "release-1")}
    outputs = workspace.outputs("dev")
    assert outputs["release"] == {"source": "stack", "version": None}
    for path in render_dir.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                kubernetes_validate.validate(doc, "1.37.0", strict=True)
                if doc["kind"] == "Deployment":
                    assert restricted_violations(doc["spec"]["template"]["spec"]) == []


def test_a_new_registry_image_shows_in_the_app_preview(workspace):
    workspace.registry("release-1", **{"dockyard:prebuilt": {"web": image("web", "release-2"),
                                                             "worker": image("worker", "release-1")}})
    assert workspace.dockyard("build", "--json")[0] == 0
    code, out, err = workspace.dockyard("deploy", "dev", "--preview", "--json")
    assert code == 0, err
    assert out["changes"].get("update", 0) >= 1
    assert rendered_deployments(workspace.dir / "rendered" / "dev")["web"] == image("web", "release-1")


def test_promote_status_rollback_history_on_the_file_store(workspace):
    workspace.app("prod")
    code, out, err = workspace.dockyard("promote", "prod", "--from", "registry", "--yes", "--json")
    assert code == 0, err
    assert out["version"] == 1 and out["deployed"] and out["verified"]
    assert rendered_deployments(workspace.dir / "rendered" / "prod")["web"] == image("web", "release-2")
    workspace.registry("release-3")
    workspace.dockyard("build", "--json")
    code, out, err = workspace.dockyard("promote", "prod", "--from", "registry", "--yes", "--json")
    assert code == 0 and out["version"] == 2, err
    code, out, _ = workspace.dockyard("status", "prod", "--json")
    assert out["environments"]["prod"]["deployed"] == 2 and out["environments"]["prod"]["knownGood"] == 2
    code, out, err = workspace.dockyard("rollback", "prod", "--to", "1", "--yes", "--json")
    assert code == 0 and out["version"] == 3 and out["restored"] == 1, err
    assert rendered_deployments(workspace.dir / "rendered" / "prod")["web"] == image("web", "release-2")
    assert workspace.outputs("prod")["release"] == {"source": "file", "version": 3}
    code, out, _ = workspace.dockyard("history", "prod", "--json")
    assert [r["version"] for r in out["releases"]] == [3, 2, 1]
    code, out, _ = workspace.dockyard("promote", "prod", "--from", "registry", "--yes", "--json")
    assert code == 3 and out["error"]["code"] == "conflict"


def test_branch_up_preview_destroy(workspace):
    # A secret in the base's config: the branch gets it re-encrypted by the engine, never as copied ciphertext.
    workspace.pulumi("config", "set", "--secret", "--path", "dockyard:kubernetes.tlsSecret", "shop-tls", "-s", "prod")
    override = image("web", "branch")
    code, out, err = workspace.dockyard("branch", "up", "feature/E2E", "--base", "prod", "--image",
                                        f"web={override}", "--json")
    assert code == 0, err
    stack = out["stack"]
    render_dir = workspace.dir / "rendered" / stack
    assert rendered_deployments(render_dir)["web"] == override
    assert workspace.outputs(stack)["namespace"].startswith("shop-prod-")
    config = workspace.pulumi("config", "--show-secrets", "--json", "-s", stack).stdout
    kube = json.loads(json.loads(config)["dockyard:kubernetes"]["value"])
    assert kube["tlsSecret"] == "shop-tls" and kube["renderDir"].endswith(stack)
    assert json.loads(config)["dockyard:kubernetes"]["secret"] is True
    code, out, err = workspace.dockyard("branch", "preview", "feature/E2E", "--json")
    assert code == 0 and out["comment"].startswith(f"<!-- dockyard-preview:{stack} -->"), err
    code, out, err = workspace.dockyard("branch", "destroy", "feature/E2E", "--json")
    assert code == 0, err
    assert stack not in workspace.stacks()
    assert not (workspace.dir / f"Pulumi.{stack}.yaml").exists()
    assert not rendered_deployments(render_dir)


def test_two_concurrent_updates_of_one_stack_end_with_one_conflict(workspace):
    first = workspace.popen("deploy", "dev", "--json")
    locks = workspace.dir / "state" / ".pulumi" / "locks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.is_file() for p in locks.rglob("*")):
        time.sleep(0.05)
    # Hold the first where it is (its engine paused, its lock kept) while the second tries: no race.
    engines = [pid for pid in descendants(first.pid) if _command(pid)[:2] == ["pulumi", "up"]]
    assert engines, "the first deploy holds the lock but runs no `pulumi up`"
    for pid in engines:
        os.kill(pid, signal.SIGSTOP)
    try:
        code, out, _ = workspace.dockyard("deploy", "dev", "--json")
    finally:
        for pid in engines:
            os.kill(pid, signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert code == 3 and out["error"]["code"] == "conflict" and "locked" in out["error"]["message"]
    # The state is intact: the stack exports, and the next update goes through.
    assert workspace.pulumi("stack", "export", "-s", "dev").returncode == 0
    code, out, err = workspace.dockyard("deploy", "dev", "--json")
    assert code == 0, err


def _command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def descendants(root: int) -> list[int]:
    """Every process below `root`, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found
