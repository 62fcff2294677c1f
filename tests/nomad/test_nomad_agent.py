"""A Nomad environment against a real Nomad agent: the job dockyard generates is accepted, deployed and
verified; a release whose image cannot be pulled fails, Nomad's auto_revert restores the previous
one, and dockyard records the revert and holds the environment; rollback deploys an older release.

The tests run in order on one environment (promote, promote, broken release, hold, rollback).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from dockyard import config
from dockyard.targets.nomad import job as nomad_job
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.stores.file import FileStore
from tests.nomad.conftest import Agent, Images, Project

pytestmark = pytest.mark.nomad

SERVICES = {"web": {"port": 8080, "desiredCount": 2, "maxCount": 4},
            "worker": {"desiredCount": 1, "healthCheckCommand": ["python", "worker.py", "--check"]}}


def env_config(project: Project, stack: str, agent: Agent) -> dict[str, Any]:
    return {"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
            "dockyard:releaseDir": str(project.dir / "releases" / stack), "dockyard:trust": "none",
            "dockyard:services": SERVICES,
            "dockyard:nomad": {"address": agent.address, "renderDir": str(project.dir / "jobs")}}


@pytest.fixture(scope="module")
def project(agent: Agent, images: Images, tmp_path_factory) -> Any:
    project = Project(tmp_path_factory.mktemp("nomad"), agent)
    project.stack = f"nomad-{secrets.token_hex(3)}"  # type: ignore[attr-defined]
    project.write_stack(project.stack, env_config(project, project.stack, agent))  # type: ignore[attr-defined]
    try:
        yield project
    finally:
        try:
            agent.call("DELETE", f"/v1/job/{nomad_job.job_id(project.stack)}?purge=true")  # type: ignore[attr-defined]
        except (urllib.error.URLError, OSError):
            pass
        project.remove_all()


def running(agent: Agent, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """service -> its running allocations (full), read straight from the agent."""
    found: dict[str, list[dict[str, Any]]] = {}
    for summary in agent.get(f"/v1/job/{job_id}/allocations"):
        if summary["ClientStatus"] == "running" and summary["DesiredStatus"] == "run":
            found.setdefault(summary["TaskGroup"], []).append(agent.get(f"/v1/allocation/{summary['ID']}"))
    return found


def http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def assert_runs(agent: Agent, images: Images, job_id: str, web: str) -> None:
    """Every allocation runs the wanted digests; each web allocation answers /healthz and /version
    with the commit that image was built from."""
    allocs = running(agent, job_id)
    assert {s: len(a) for s, a in allocs.items()} == {"web": 2, "worker": 1}
    for service, ref in (("web", web), ("worker", images.worker)):
        for alloc in allocs[service]:
            group = next(g for g in alloc["Job"]["TaskGroups"] if g["Name"] == service)
            assert group["Tasks"][0]["Config"]["image"] == ref
    for alloc in allocs["web"]:
        port = next(p for p in alloc["AllocatedResources"]["Shared"]["Ports"] if p["Label"] == "http")
        base = f"http://{port['HostIP']}:{port['Value']}"
        assert port["HostIP"].startswith("127."), port  # only loopback receives traffic
        assert http(base + "/healthz")[0] == 200
        status, body = http(base + "/version")
        assert status == 200 and json.loads(body)["commit"] == images.commits[web]


def store(project: Project) -> FileStore:
    return FileStore(project.dir / "releases" / project.stack)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the job itself


def test_the_agent_accepts_the_generated_job_for_base_and_branch_stacks(agent: Agent, images: Images):
    for stack, ephemeral in (("dev", False), ("branch-fix-login", True)):
        settings = config.load({"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
                                "dockyard:ephemeral": ephemeral, "dockyard:services": SERVICES}, stack=stack)
        spec = nomad_job.job(settings, {"web": images.web_v1, "worker": images.worker}, "file:1")
        answer = agent.call("PUT", "/v1/validate/job", spec)
        assert not answer.get("ValidationErrors") and not answer.get("Error"), answer
    # And the plan of a branch job touches no allocation of the base's job.
    assert nomad_job.job_id("branch-fix-login") != nomad_job.job_id("dev")


# ----------------------------------------------------------------------------- the environment's story


def test_promote_deploys_the_release_and_every_allocation_runs_its_digest(project, agent: Agent, images: Images):
    project.registry(images.web_v1, images.worker)
    code, _, err = project.dockyard("build")
    assert code == 0, err
    started = time.monotonic()
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes", "--json")
    assert code == 0, err
    assert out["deployed"] is True and out["verified"] is True
    print(f"first promote (engine up + submit + healthy): {time.monotonic() - started:.1f}s")
    job_id = nomad_job.job_id(project.stack)
    assert_runs(agent, images, job_id, images.web_v1)
    labels = store(project).labels()
    assert labels["deployed"] == labels["known-good"] == out["version"]
    rendered = json.loads((project.dir / "jobs" / f"{job_id}.json").read_text())
    assert nomad_job.images_of(rendered) == {"web": images.web_v1, "worker": images.worker}


def test_a_new_release_rolls_out_through_a_canary(project, agent: Agent, images: Images):
    project.registry(images.web_v2, images.worker)
    assert project.dockyard("build")[0] == 0
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes", "--json")
    assert code == 0, err
    job_id = nomad_job.job_id(project.stack)
    assert_runs(agent, images, job_id, images.web_v2)
    latest = agent.get(f"/v1/job/{job_id}/deployment")
    assert latest["Status"] == "successful"
    assert latest["TaskGroups"]["web"]["DesiredCanaries"] == 1 and latest["TaskGroups"]["web"]["Promoted"]


def test_status_shows_wanted_and_running_allocations_per_service(project, agent: Agent, images: Images):
    code, out, err = project.dockyard("status", project.stack, "--json")
    assert code == 0, err
    running_now = out["environments"][project.stack]["running"]
    assert running_now["services"] == {"web": {"wanted": 2, "running": 2}, "worker": {"wanted": 1, "running": 1}}
    assert running_now["release"] == out["environments"][project.stack]["version"]


def test_an_unpullable_release_fails_nomad_reverts_and_dockyard_records_it_and_holds(project, agent, images):
    releases = store(project)
    before = releases.current()
    assert before is not None
    # A release whose web digest was never pushed (or was deleted by retention after promotion).
    broken = Release(images={**before.release.images, "web": ImageRef.parse_pinned(images.missing)},
                     source="registry:broken", by="nomad-test", at="2026-01-01T00:00:00Z")
    failed = releases.append(broken, expected=before.version).version
    started = time.monotonic()
    code, _, err = project.dockyard("deploy", project.stack)
    took = time.monotonic() - started
    print(f"broken release: deploy to recorded revert: {took:.1f}s")
    assert code == 1, err
    assert "Nomad reverted to release" in err and f"release {failed}" in err
    # The history: the failed release is marked reverted; a new release restores the previous images.
    code, history, err = project.dockyard("history", project.stack, "--json")
    assert code == 0, err
    newest, undone = history["releases"][0], next(r for r in history["releases"] if r["version"] == failed)
    assert newest["rollback"]["cause"] == "reverted"
    assert (newest["rollback"]["of"], newest["rollback"]["to"]) == (failed, before.version)
    assert newest["images"] == before.release.image_strings()
    assert undone["outcome"] == "reverted"
    labels = releases.labels()
    assert labels["deployed"] == labels["known-good"] == newest["version"]
    hold = releases.hold()
    assert hold is not None and hold.version == newest["version"]
    # What runs is the previous release, as Nomad restored it.
    assert_runs(agent, images, nomad_job.job_id(project.stack), images.web_v2)


def test_a_held_environment_refuses_promotions(project, images: Images):
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes")
    assert code != 0
    assert "held" in err


def test_rollback_deploys_an_older_release_and_holds(project, agent: Agent, images: Images):
    code, out, err = project.dockyard("rollback", project.stack, "--to", "1", "--yes", "--json")
    assert code == 0, err
    assert out["deployed"] is True and out["verified"] is True
    assert_runs(agent, images, nomad_job.job_id(project.stack), images.web_v1)
    assert store(project).hold() is not None
