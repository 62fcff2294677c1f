"""Software nobody here wrote, on a real Nomad agent through `dockyard promote`: nginx and redis-server from
Debian's packages, then a public sample's own Dockerfile, configured only through documented keys. Each
runs as its image was built (its user, its paths), verifies with no endpoint added for dockyard, and
`status` shows each service's commit from its image's revision label. The sample would run as root: its
first promote is refused before anything is written, with the key that fixes it.

The tests run in order on one environment: the two servers, then the sample beside them.
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

from dockyard.targets.nomad import job as nomad_job
from tests.nomad.conftest import Agent, Project, _exported
from tests.support import theirs

pytestmark = pytest.mark.nomad


@pytest.fixture(scope="module")
def engine_env() -> dict[str, str]:
    return {**os.environ, **{k: v for k, v in _exported("engine").items() if k not in os.environ},
            "DOCKER_BUILDKIT": "0"}


@pytest.fixture(scope="module")
def project(agent: Agent, engine_env, tmp_path_factory) -> Any:
    project = Project(tmp_path_factory.mktemp("theirs-nomad"), agent)
    project.stack = f"theirs-{secrets.token_hex(3)}"  # type: ignore[attr-defined]
    project.built = theirs.build_servers(engine_env, "dockyard-theirs-nomad")  # type: ignore[attr-defined]
    try:
        yield project
    finally:
        try:
            agent.call("DELETE", f"/v1/job/{nomad_job.job_id(project.stack)}?purge=true")  # type: ignore[attr-defined]
        except OSError:
            pass
        project.remove_all()


def publish(project: Project, refs: dict[str, str]) -> None:
    """The registry stack records images built elsewhere (these), as `dockyard build` does for any CI."""
    project.write_stack("registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                     "dockyard:publish": False, "dockyard:services": {s: {} for s in refs},
                                     "dockyard:prebuilt": refs})
    code, _, err = project.dockyard("build", "--json")
    assert code == 0, err[-2000:]


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


def in_container(env: dict[str, str], service: str, alloc_id: str, *command: str) -> str:
    """Run a command in the allocation's container through the engine (a client dockyard does not control)."""
    return subprocess.run(["docker", "exec", f"{service}-{alloc_id}", *command], env=env, capture_output=True,
                           text=True, check=True, timeout=60).stdout.strip()


def check_runs_as_built(agent: Agent, env: dict[str, str], stack: str, refs: dict[str, str],
                        users: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Every service's container runs its digest, hardened, as `users` says; returns the allocations."""
    allocs = allocations(agent, nomad_job.job_id(stack))
    assert set(allocs) == set(refs)
    for service, alloc in allocs.items():
        inspected = json.loads(subprocess.run(["docker", "inspect", f"{service}-{alloc['ID']}"], env=env,
                                              capture_output=True, text=True, check=True).stdout)[0]
        image = json.loads(subprocess.run(["docker", "image", "inspect", inspected["Image"]], env=env,
                                          capture_output=True, text=True, check=True).stdout)[0]
        assert refs[service] in image["RepoDigests"]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        assert [c.lower() for c in inspected["HostConfig"]["CapDrop"]] == ["all"]
        assert "no-new-privileges" in inspected["HostConfig"]["SecurityOpt"]
        assert in_container(env, service, alloc["ID"], "id", "-u") == str(users[service])
    return allocs


def test_debian_nginx_and_redis_promote_as_their_images_built_them_and_verify_without_version(
        project, agent, engine_env):
    built: theirs.Theirs = project.built
    publish(project, built.refs)
    write_env(project, agent, {s: theirs.SERVICES[s] for s in built.refs})
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    assert out["verified"] is True

    # nginx as www-data (33: the image names its user, the key gives the number), redis as its image's 999.
    allocs = check_runs_as_built(agent, engine_env, project.stack, built.refs, {"nginx": 33, "redis": 999})
    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(allocs['nginx'])}/", timeout=10) as page:
        assert page.status == 200 and b"nginx" in page.read()
    with socket.create_connection(("127.0.0.1", port_of(allocs["redis"])), timeout=10) as conn:
        conn.sendall(b"SET dockyard ok\r\nSAVE\r\n")
        answer = b""
        while answer.count(b"\r\n") < 2:
            answer += conn.recv(64)
        assert answer == b"+OK\r\n+OK\r\n"
    listing = in_container(engine_env, "redis", allocs["redis"]["ID"], "ls", "-ln", "/var/lib/redis/data")
    assert "dump.rdb" in listing and " 999 999 " in listing  # written into its data directory, as itself

    code, status, err = project.dockyard("status", project.stack, "--json")
    assert code == 0, err[-2000:]
    assert status["environments"][project.stack]["commits"] == built.commits


def test_a_public_samples_own_dockerfile_is_refused_as_root_then_runs_as_the_uid_a_key_sets(
        project, agent, engine_env, tmp_path_factory):
    sample = theirs.build_sample(tmp_path_factory.mktemp("sample"), engine_env, "dockyard-theirs-nomad")
    refs = {**project.built.refs, **sample.refs}
    publish(project, refs)
    before = project.dockyard("history", project.stack, "--json")[1]["releases"]
    write_env(project, agent, theirs.SERVICES)
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes", "--json")
    assert code == 2, err[-2000:]
    assert "dockyard:services.hello.runAsUser" in out["error"]["message"] and "root" in out["error"]["message"]
    assert project.dockyard("history", project.stack, "--json")[1]["releases"] == before  # nothing written

    services = {**theirs.SERVICES, "hello": {**theirs.SERVICES["hello"], "runAsUser": theirs.SAMPLE_USER}}
    write_env(project, agent, services)
    code, out, err = project.dockyard("promote", project.stack, "--from", "registry", "--yes", "--json")
    assert code == 0, err[-3000:]
    assert out["verified"] is True and set(out["changes"]) == {"hello"}
    allocs = check_runs_as_built(agent, engine_env, project.stack, refs,
                                 {"nginx": 33, "redis": 999, "hello": theirs.SAMPLE_USER})
    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(allocs['hello'])}/", timeout=10) as page:
        assert page.status == 200
    code, status, err = project.dockyard("status", project.stack, "--json")
    assert status["environments"][project.stack]["commits"] == {**project.built.commits, **sample.commits}
