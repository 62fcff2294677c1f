"""Every service image, built with the real engine and run the way the targets run it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.images.conftest import SERVICES, Engine, sha256_digest

pytestmark = pytest.mark.engine

# The image's own HEALTHCHECK command, checked every second instead of every 15-30 s.
FAST_HEALTH = ("--health-interval", "1s", "--health-start-period", "30s")


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


@pytest.fixture(scope="session")
def running(engine: Engine, images: dict[str, str]):
    """One hardened, healthy container per service, shared by the read-only checks."""
    containers: dict[str, str] = {}
    try:
        for service, image in images.items():
            publish = ("-p", "127.0.0.1::8080") if service == "web" else ()
            containers[service] = engine.start(image, *FAST_HEALTH, *publish)
        for container in containers.values():
            engine.wait_healthy(container)
        yield containers
    finally:
        engine.remove(*containers.values())


def web_url(engine: Engine, container: str) -> str:
    port = engine.run("port", container, "8080/tcp").stdout.split()[0]
    return f"http://{port}"


def test_every_service_has_an_image_under_test():
    assert SERVICES == ["web", "worker"], "a new service needs its checks here"


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_as_10001_and_carries_the_build_commit(engine, images, commit, service):
    config = engine.inspect(images[service])["Config"]
    assert config["User"].split(":")[0] == "10001"
    assert config["Labels"]["org.opencontainers.image.revision"] == commit
    assert f"COMMIT_SHA={commit}" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD", "the image defines its own health check"


@pytest.mark.parametrize("service", SERVICES)
def test_hardened_container_turns_healthy(engine, running, service):
    state = engine.inspect(running[service])["State"]
    assert state["Health"]["Status"] == "healthy"
    host = engine.inspect(running[service])["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]


def test_web_answers_healthz_and_reports_its_commit(engine, running, commit):
    url = web_url(engine, running["web"])
    assert get(f"{url}/healthz") == (200, {"status": "ok"})
    assert get(f"{url}/version") == (200, {"service": "web", "commit": commit})


def test_worker_check_passes_inside_the_container(engine, running):
    check = engine.run("exec", running["worker"], "python", "worker.py", "--check", check=False)
    assert check.returncode == 0, check.stderr
    # And it can fail: with no heartbeat file the same check reports unhealthy.
    missing = engine.run("exec", "-e", "HEARTBEAT_FILE=/tmp/absent", running["worker"],
                         "python", "worker.py", "--check", check=False)
    assert missing.returncode == 1


@pytest.mark.parametrize("service", SERVICES)
def test_sigterm_stops_the_container_cleanly_within_the_stop_timeout(engine, images, service):
    container = engine.start(images[service], *FAST_HEALTH)
    try:
        engine.wait_healthy(container)
        started = time.monotonic()
        engine.run("stop", "-t", "10", container, timeout=60)
        elapsed = time.monotonic() - started
        state = engine.inspect(container)["State"]
        # Exit code 137 would mean the engine had to SIGKILL it after the timeout.
        assert state["ExitCode"] == 0 and not state["OOMKilled"], state
        # The services end on SIGTERM at once; well inside the 10 s the engine (and ECS, Kubernetes) allow.
        assert elapsed < 5, f"stopped after {elapsed:.1f}s"
    finally:
        engine.remove(container)


@pytest.mark.parametrize("service", SERVICES)
def test_pushed_image_is_served_by_digest(engine, images, commit, service):
    repository = f"dockyard-test/{service}"
    ref = f"{engine.registry}/{repository}:{commit[:12]}"
    engine.run("tag", images[service], ref)
    try:
        digest = engine.push(ref)
        status, headers, body = engine.manifest(repository, digest)
        assert status == 200
        assert headers.get("Docker-Content-Digest") == digest
        assert sha256_digest(body) == digest
        # The manifest names the image's config: the one the engine built.
        config_digest = json.loads(body)["config"]["digest"]
        assert config_digest == engine.inspect(images[service])["Id"]
        engine.delete_manifest(repository, digest)
        assert engine.manifest(repository, digest)[0] == 404
    finally:
        engine.run("rmi", ref, check=False)
