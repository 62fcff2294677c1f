"""Software nobody here wrote, on a real Nomad agent through `dockyard promote`: nginx and redis-server from
Debian's packages and a public sample's own Dockerfile, configured only through documented keys. Each runs
as its image was built (its user, its paths), verifies with no endpoint added for dockyard, and `status`
shows each service's commit from its image's revision label. The sample would run as root: its first
promote is refused before anything is written, with the key that fixes it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import urllib.request
from typing import Any

import pytest

from infra.targets.nomad import job as nomad_job
from tests.nomad.conftest import Agent, Project, _exported
from tests.support import theirs

pytestmark = pytest.mark.nomad


@pytest.fixture(scope="module")
def engine_env() -> dict[str, str]:
    return {**os.environ, **{k: v for k, v in _exported("engine").items() if k not in os.environ},
            "DOCKER_BUILDKIT": "0"}


@pytest.fixture(scope="module")
def built(agent: Agent, engine_env, tmp_path_factory) -> theirs.Theirs:
    return theirs.build(tmp_path_factory.mktemp("theirs"), engine_env, "dockyard-theirs-nomad")


@pytest.fixture(scope="module")
def project(agent: Agent, built, tmp_path_factory) -> Any:
    project = Project(tmp_path_factory.mktemp("theirs-nomad"), agent)
    project.stack = f"theirs-{secrets.token_hex(3)}"  # type: ignore[attr-defined]
    try:
        yield project
    finally:
        try:
            agent.call("DELETE", f"/v1/job/{nomad_job.job_id(project.stack)}?purge=true")  # type: ignore[attr-defined]
        except OSError:
            pass
        project.remove_all()


def write_env(project: Project, agent: Agent, services: dict[str, Any]) -> None:
    stack = project.stack  # type: ignore[attr-defined]
    project.write_stack(stack, {
        "dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
        "dockyard:releaseDir": str(project.dir / "releases" / stack), "dockyard:trust": "none",
        "dockyard:services": services,
        "dockyard:nomad": {"address": agent.address, "renderDir": str(project.dir / "jobs")}})


def allocations(agent: Agent, job_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for summary in agent.get(f"/v1/job/{job_id}/allocations"):
        if summary["ClientStatus"] == "running" and summary["DesiredStatus"] == "run":
            found[summary["TaskGroup"]] = agent.get(f"/v1/allocation/{summary['ID']}")
    return found


def port_of(alloc: dict[str, Any]) -> int:
    (port,) = [p for p in alloc["AllocatedResources"]["Shared"]["Ports"] if p["Label"] == "http"]
    return int(port["Value"])


def container(env: dict[str, str], service: str, alloc_id: str) -> dict[str, Any]:
    """The engine's own view of the allocation's container (a client dockyard does not control)."""
    return json.loads(subprocess.run(["docker", "inspect", f"{service}-{alloc_id}"], env=env, capture_output=True,
                                     text=True, check=True, timeout=60).stdout)[0]


def test_their_servers_promote_run_as_their_images_user_and_verify_without_version(project, agent, built, engine_env):
    stack = project.stack
    project.write_stack("registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                     "dockyard:publish": False, "dockyard:services": {s: {} for s in built.refs},
                                     "dockyard:prebuilt": built.refs})
    code, _, err = project.dockyard("build", "--json")
    assert code == 0, err[-2000:]

    # The sample's image has no USER: refused before anything is written, naming the key to set.
    write_env(project, agent, theirs.SERVICES)
    code, out, err = project.dockyard("promote", stack, "--from", "registry", "--yes", "--json")
    assert code == 2, err[-2000:]
    assert "dockyard:services.hello.runAsUser" in out["error"]["message"] and "root" in out["error"]["message"]
    assert not (project.dir / "releases" / stack).exists() or not list((project.dir / "releases" / stack).rglob("*.json"))

    # Only a documented key changes: the uid the sample runs as.
    services = {**theirs.SERVICES, "hello": {**theirs.SERVICES["hello"], "runAsUser": theirs.SAMPLE_USER}}
    write_env(project, agent, services)
    code, out, err = project.dockyard("promote", stack, "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    assert out["verified"] is True

    job_id = nomad_job.job_id(stack)
    allocs = allocations(agent, job_id)
    assert set(allocs) == {"nginx", "redis", "hello"}
    users = {}
    for service, alloc in allocs.items():
        inspected = container(engine_env, service, alloc["ID"])
        assert inspected["Image"] and built.refs[service].rsplit("@", 1)[1] in " ".join(
            json.loads(subprocess.run(["docker", "image", "inspect", inspected["Image"]], env=engine_env,
                                      capture_output=True, text=True, check=True).stdout)[0]["RepoDigests"])
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True and inspected["HostConfig"]["CapDrop"] in (
            ["all"], ["ALL"])
        users[service] = subprocess.run(["docker", "exec", f"{service}-{alloc['ID']}", "id", "-u"], env=engine_env,
                                        capture_output=True, text=True, check=True).stdout.strip()
    # As the images were built: nginx as www-data (33, set because the image names it), redis as its own 999
    # (from the image), the sample as the uid the key gave it.
    assert users == {"nginx": "33", "redis": "999", "hello": str(theirs.SAMPLE_USER)}

    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(allocs['nginx'])}/", timeout=10) as page:
        assert page.status == 200 and b"nginx" in page.read()
    with socket.create_connection(("127.0.0.1", port_of(allocs["redis"])), timeout=10) as conn:
        conn.sendall(b"SET dockyard ok\r\nSAVE\r\n")
        assert conn.recv(64).startswith(b"+OK")
    # redis wrote its data into its writable data directory, as its own user.
    listing = subprocess.run(["docker", "exec", f"redis-{allocs['redis']['ID']}", "ls", "-ln", "/var/lib/redis/data"],
                             env=engine_env, capture_output=True, text=True, check=True).stdout
    assert "dump.rdb" in listing and " 999 " in listing
    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(allocs['hello'])}/", timeout=10) as page:
        assert page.status == 200

    code, status, err = project.dockyard("status", stack, "--json")
    assert code == 0, err[-2000:]
    assert status["environments"][stack]["commits"] == built.commits
