"""`/version` is the app's to answer or not: verification on ECS and Nomad passes without it, reads it where
it answers, and refuses one that contradicts the commit the image records. Real servers on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard import config
from dockyard.targets import checks
from dockyard.targets.checks import VerificationFailed
from dockyard.targets.nomad import deploy as nomad_deploy
from tests.support.loopback import Loopback, QuietHandler
from tests.unit.app_fixtures import IMAGES


def serve(routes: dict[str, tuple[int, bytes]]) -> Iterator[str]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, body = routes.get(self.path, (404, b"<html>not found</html>"))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

    server = Loopback(Handler)
    try:
        yield server.base
    finally:
        server.stop()


@pytest.fixture()
def nginx_like() -> Iterator[str]:
    """An app with a health page and no /version (nginx serving its default site)."""
    yield from serve({"/": (200, b"<html>Welcome to nginx!</html>")})


@pytest.fixture()
def versioned() -> Iterator[str]:
    yield from serve({"/healthz": (200, b"ok"), "/version": (200, json.dumps({"commit": "c0ffee12"}).encode())})


def settings(target: str = "ecs", **web: Any):
    return config.load({"dockyard:role": "app", "dockyard:target": target, "dockyard:imageSource": "file",
                        "dockyard:services": {"web": {"port": 8080, "desiredCount": 1, **web}}}, stack="dev")


def test_ecs_health_passes_without_version_and_reports_no_commit(nginx_like):
    seen = checks.check_health(settings(healthCheckPath="/"), {"services": {"web": nginx_like}}, timeout=2,
                               commits={"web": "c0ffee12"})
    assert seen == {}


def test_ecs_version_that_agrees_with_the_image_label_is_read(versioned):
    seen = checks.check_health(settings(), {"services": {"web": versioned}}, timeout=2,
                               commits={"web": "c0ffee1234567890"})
    assert seen == {"web": "c0ffee12"}


def test_ecs_version_that_contradicts_the_image_label_fails_verification(versioned):
    with pytest.raises(VerificationFailed, match="commit c0ffee12, but its image was built from 0ddba11"):
        checks.check_health(settings(), {"services": {"web": versioned}}, timeout=2, commits={"web": "0ddba11"})


class OneAllocation:
    """Nomad's API for a job of one running web allocation on `port` (the rest is the real check)."""

    namespace = "default"

    def __init__(self, port: int) -> None:
        self.port = port

    def job(self, job_id: str) -> dict[str, Any]:
        return {"Version": 1, "TaskGroups": [{"Name": "web", "Count": 1}], "Meta": {}}

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        return [{"ID": "a1b2c3d4e5", "TaskGroup": "web", "ClientStatus": "running", "DesiredStatus": "run"}]

    def allocation(self, alloc_id: str) -> dict[str, Any]:
        return {"ID": alloc_id, "Job": {"TaskGroups": [{"Name": "web", "Tasks": [{"Config": {"image": IMAGES["web"]}}]}]},
                "AllocatedResources": {"Shared": {"Ports": [{"Label": "http", "Value": self.port,
                                                             "HostIP": "127.0.0.1"}]}}}


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_nomad_verifies_an_app_without_version(nginx_like, monkeypatch):
    monkeypatch.setattr(nomad_deploy, "container_digests", lambda *a: None)
    logs: list[str] = []
    running = nomad_deploy.check_running(OneAllocation(_port(nginx_like)), settings("nomad", healthCheckPath="/"),
                                         "dockyard-dev", {"web": IMAGES["web"]}, health_timeout=2, log=logs.append,
                                         commits={"web": "c0ffee12"})
    assert running.running == {"web": 1}
    assert any("/ 200" in line for line in logs) and not any("/version" in line for line in logs)


def test_nomad_refuses_a_version_that_contradicts_the_image_label(versioned, monkeypatch):
    monkeypatch.setattr(nomad_deploy, "container_digests", lambda *a: None)
    with pytest.raises(VerificationFailed, match="built from 0ddba11"):
        nomad_deploy.check_running(OneAllocation(_port(versioned)), settings("nomad"), "dockyard-dev",
                                   {"web": IMAGES["web"]}, health_timeout=2, commits={"web": "0ddba11"})


def test_nomad_tcp_check_connects_to_the_allocated_port(monkeypatch):
    monkeypatch.setattr(nomad_deploy, "container_digests", lambda *a: None)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    tcp = settings("nomad", healthCheckType="tcp")
    try:
        nomad_deploy.check_running(OneAllocation(port), tcp, "dockyard-dev", {"web": IMAGES["web"]}, health_timeout=2)
    finally:
        listener.close()
    with pytest.raises(VerificationFailed, match="did not accept a TCP connection"):
        nomad_deploy.check_running(OneAllocation(port), tcp, "dockyard-dev", {"web": IMAGES["web"]},
                                   health_timeout=0.5)
