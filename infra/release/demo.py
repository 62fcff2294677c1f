"""`dockyard demo`: the whole release story on the real engine, on this machine, in `.dockyard/demo/`.

A registry stack in `external` mode records pinned images (nothing is built:
there is no container engine here), app stacks `dev` and `prod` keep their
releases in the file store and render Kubernetes manifests to a directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.release import branches, inspect, local, promotion
from infra.release.context import Context
from infra.release.engine import AutomationDeployer
from infra.release.project import Project
from infra.release.registry import build

SERVICES = ("web", "worker")
BRANCH = "feature/demo-banner"


def recorded_image(service: str, build_name: str) -> str:
    """A pinned reference standing for an image CI pushed: digest derived from the build's name."""
    digest = hashlib.sha256(f"dockyard-demo/{service}/{build_name}".encode()).hexdigest()
    return f"ghcr.io/dockyard-demo/{service}@sha256:{digest}"


def registry_config(build_name: str) -> dict[str, Any]:
    return {
        "dockyard:role": "registry",
        "dockyard:registry": "external",
        "dockyard:publish": False,
        "dockyard:services": {s: {} for s in SERVICES},
        "dockyard:prebuilt": {s: recorded_image(s, build_name) for s in SERVICES},
    }


def app_config(workdir: Path, stack: str) -> dict[str, Any]:
    return {
        "dockyard:role": "app",
        "dockyard:target": "kubernetes",
        "dockyard:imageSource": "file",
        "dockyard:releaseDir": str(workdir / "releases" / stack),
        "dockyard:kubernetes": {"renderDir": str(workdir / "rendered" / stack), "namespace": f"shop-{stack}",
                                "ingressClass": "nginx", "host": f"{stack}.shop.example.com"},
        "dockyard:services": {
            "web": {"port": 8080, "desiredCount": 2, "maxCount": 4, "environment": {"LOG_LEVEL": "info"}},
            "worker": {"desiredCount": 1, "healthCheckCommand": ["python", "worker.py", "--check"]},
        },
    }


@dataclass
class DemoResult:
    workdir: Path
    steps: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "steps": self.steps, "rendered": self.rendered}

    def lines(self) -> list[str]:
        lines = ["", "The demo walked the whole story on the real Pulumi engine (images were recorded, not built:",
                 "there is no container engine here, so the registry stack recorded pinned references):"]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        lines += ["", "Rendered manifests (apply them with Argo CD or Flux, or kubectl apply -R -f):"]
        lines += [f"  {path}" for path in self.rendered]
        lines += [f"State and releases: {self.workdir}", "Run it again any time: ./scripts/demo"]
        return lines


class Story:
    """Narrates each step on stderr and records it for the summary."""

    def __init__(self, ctx: Context, result: DemoResult) -> None:
        self.ctx, self.result = ctx, result
        self.number = 0

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        self.number += 1
        self.ctx.log(f"\n==> {self.number}. {title}")
        outcome = action()
        for line in getattr(outcome, "lines", lambda: [])():
            self.ctx.log(f"    {line}")
        self.result.steps.append(title)
        return outcome


def prepare(project_root: Path, workdir: Path) -> Project:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    # A project of its own (same name, same program) so the demo never touches the real stacks.
    (workdir / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "dockyard", "description": "dockyard demo workspace",
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(project_root / ".venv")}},
        "main": os.path.relpath(project_root, workdir)}, sort_keys=False))
    project = Project(workdir)
    project.write_stack_config("registry", registry_config("release-1"))
    for stack in ("dev", "prod"):
        project.write_stack_config(stack, app_config(workdir, stack))
    return project


def run_demo(project_root: Path, workdir: Path, log: Callable[[str], None]) -> DemoResult:
    project = prepare(project_root, workdir)
    env = local.local_engine_env(workdir / "state", project_root)
    local.require_engine(env)
    local.apply(env)
    ctx = Context(project=project, deployer_factory=lambda: AutomationDeployer(project.dir, log=_quiet(log)),
                  log=log, confirm=None, user="demo")
    result = DemoResult(workdir=workdir)
    story = Story(ctx, result)
    log("dockyard demo: images are recorded, not built - there is no container engine on this machine. "
        "The registry stack records pinned references, as it does for images another CI pushed.")

    story.step("Record release 1 in the registry stack", lambda: build(ctx))
    story.step("Promote the registry's release into dev and deploy it",
               lambda: promotion.promote(ctx, "dev", "registry", services=[], reason="first release", deploy=True,
                                         yes=True, release_hold=False))
    story.step("Promote dev into prod", lambda: promotion.promote(
        ctx, "prod", "dev", services=[], reason="ship release 1", deploy=True, yes=True, release_hold=False))
    project.write_stack_config("registry", {**registry_config("release-1"), "dockyard:prebuilt": {
        "web": recorded_image("web", "release-2"), "worker": recorded_image("worker", "release-1")}})
    story.step("Record release 2 (a new web image) in the registry stack", lambda: build(ctx))
    story.step("Promote it into dev", lambda: promotion.promote(
        ctx, "dev", "registry", services=[], reason="new web", deploy=True, yes=True, release_hold=False))
    status = story.step("Status: dev is ahead of prod", lambda: inspect.status(ctx, ["dev", "prod"]))
    _log_table(log, *status.table())
    story.step("Promote dev into prod", lambda: promotion.promote(
        ctx, "prod", "dev", services=[], reason="ship release 2", deploy=True, yes=True, release_hold=False))
    story.step("Roll prod back to release 1, without rebuilding anything", lambda: promotion.rollback(
        ctx, "prod", to=1, services=[], reason="release 2 misbehaves", deploy=True, yes=True))
    history = story.step("History of prod", lambda: inspect.history(ctx, "prod", None))
    _log_table(log, *history.table())
    story.step(f"Open a branch stack for {BRANCH} with the branch's own web image", lambda: branches.up(
        ctx, BRANCH, base="dev", images=[f"web={recorded_image('web', 'branch-banner')}"]))
    story.step("Destroy the branch stack", lambda: branches.destroy(ctx, BRANCH))
    result.rendered = sorted(str(p) for p in (workdir / "rendered").glob("*")
                             if p.is_dir() and any(f.is_file() for f in p.rglob("*.yaml")))
    return result


def _quiet(log: Callable[[str], None]) -> Callable[[str], None]:
    """Engine output, indented under the step it belongs to."""
    return lambda line: log("      " + line.rstrip("\n")) if line.strip() else None


def _log_table(log: Callable[[str], None], header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        log("    " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
