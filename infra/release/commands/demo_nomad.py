"""`dockyard demo --nomad`: after the main story, a third environment on a real Nomad agent.

`nomad` takes prod's release (the same digests), runs it as one Nomad job, shows wanted vs running
allocations, then gets a release whose web image cannot be pulled: the deployment fails, Nomad's
auto_revert restores the previous job version, and dockyard records that as a release and holds.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockyard.targets.nomad import job as nomad_job
from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.commands import inspect
from dockyard.release.commands import promotion
from dockyard.release.context import Context
from dockyard.release.engine import AutomationDeployer
from dockyard.targets.nomad.deploy import NomadApi, NomadReverted
from dockyard.release.project import Project

ENV = "nomad"
SOURCE = "prod"


@dataclass
class Said:
    text: str

    def lines(self) -> list[str]:
        return [self.text]


def nomad_config(workdir: Path, address: str) -> dict[str, Any]:
    """The third environment: prod's services and trust, as one Nomad job; the job also rendered as JSON."""
    prod = yaml.safe_load((workdir / f"Pulumi.{SOURCE}.yaml").read_text())["config"]
    return {
        "dockyard:role": "app",
        "dockyard:target": "nomad",
        "dockyard:imageSource": "file",
        "dockyard:releaseDir": str(workdir / "releases" / ENV),
        "dockyard:services": prod["dockyard:services"],
        **({"dockyard:trust": prod["dockyard:trust"]} if "dockyard:trust" in prod else {}),
        "dockyard:nomad": {"address": address, "renderDir": str(workdir / "rendered" / ENV)},
    }


def _agent_address() -> str | None:
    """The agent `scripts/nomad env` names, when NOMAD_ADDR is not exported."""
    script = Path(__file__).resolve().parents[3] / "scripts" / "nomad"
    try:
        out = subprocess.run([str(script), "env"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = [line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export NOMAD_ADDR=")]
    return found[0] if found else None


def chapter(result: Any, log: Callable[[str], None]) -> None:
    """Run the Nomad steps in the demo's workspace (after run_demo); numbered on from its steps."""
    address = os.environ.get("NOMAD_ADDR") or _agent_address()
    if not address:
        log("\ndockyard demo --nomad: no Nomad agent (NOMAD_ADDR is not set); ./scripts/nomad up starts one, "
            "then eval \"$(./scripts/nomad env)\"")
        return
    workdir = Path(result.workdir)
    api = NomadApi(address, token=os.environ.get("NOMAD_TOKEN"))
    api.job("dockyard-probe")  # a clear error now if the agent does not answer
    project = Project(workdir)
    project.write_stack_config(ENV, nomad_config(workdir, address))
    engine_log = Path(result.engine_log)
    ctx = Context(project=project, deployer_factory=lambda: AutomationDeployer(project.dir, log=log,
                                                                               engine_log=engine_log),
                  log=log, confirm=None, user="demo", health_timeout=45.0)
    number = len(result.steps)

    def step(title: str, action: Callable[[], Any]) -> Any:
        nonlocal number
        number += 1
        log(f"\n{number}. {title}")
        outcome = action()
        for line in getattr(outcome, "lines", lambda: [])():
            if line.strip():
                log(f"   {line}")
        result.steps.append(title)
        return outcome

    job_id = nomad_job.job_id(ENV)
    step(f"Promote {SOURCE} into {ENV}, a third environment: one Nomad job ({job_id}) on {address}",
         lambda: promotion.promote(ctx, ENV, SOURCE, services=[], reason="ship to Nomad", deploy=True, yes=True,
                                   release_hold=False))
    status = step(f"Status of {ENV}: wanted vs running allocations, from the job",
                  lambda: inspect.status(ctx, [ENV]))
    header, rows = status.table()
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        log("   " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))

    def broken() -> Said:
        store = ctx.store(project.environment(ENV))
        current = store.current()
        assert current is not None
        web = str(current.release.images["web"]).rsplit("@", 1)[0]
        missing = ImageRef.parse_pinned(f"{web}@sha256:{'0' * 64}")
        written = store.append(Release(images={**current.release.images, "web": missing}, source="demo:broken",
                                       by="demo", at=ctx.timestamp(), reason="a web digest nobody pushed"),
                               expected=current.version)
        try:
            promotion.deploy(ctx, ENV, preview=False)
        except NomadReverted as reverted:
            return Said(f"release {written.version} failed as it should; {reverted.message}")
        raise DockyardError("the unpullable release deployed; the demo expected Nomad to revert it")

    step(f"A release of {ENV} whose web digest is not in the registry: Nomad reverts it by itself, dockyard "
         "records the revert and holds the environment", broken)
    history = step(f"History of {ENV}", lambda: inspect.history(ctx, ENV, None))
    header, rows = history.table()
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        log("   " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    current = ctx.store(project.environment(ENV)).current()
    if current is not None:
        result.environments[ENV] = {"version": current.version, "images": current.release.image_strings(),
                                    "nomadJob": job_id, "nomadAddress": address}
    log(f"\n   {ENV} keeps running on {address}; `nomad job stop -purge {job_id}` removes it")
