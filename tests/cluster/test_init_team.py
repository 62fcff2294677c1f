"""A team's first day, as README "Your own services" tells it: `dockyard init` in the team's own repository
(services/api, frontend/, a compose.yaml, its own infra/ folder), `dockyard build --local` on the real engine,
`dockyard promote dev --from registry` onto the live cluster, verified; what runs is read with kubectl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from dockyard.release.commands import build_local as local
from tests.cluster.conftest import kubectl, pod_digests
from tests.e2e.conftest import PROJECT_DIR
from tests.support.container_engine import require_engine

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

SERVER = '''\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {"/healthz": {"status": "ok"}, "/ready": {"status": "ok"},
                  "/version": {"commit": os.environ.get("COMMIT_SHA", "unknown")},
                  "/": {"service": "%s", "greeting": os.environ.get("GREETING", "hello")}}
        body = routes.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {"error": "not found"}).encode())

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", %d), Handler).serve_forever()
'''
DOCKERFILE = '''\
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG COMMIT_SHA=unknown
ENV PYTHONDONTWRITEBYTECODE=1 COMMIT_SHA=${COMMIT_SHA}
LABEL org.opencontainers.image.revision=${COMMIT_SHA}
WORKDIR /srv
COPY server.py .
USER 10001:10001
EXPOSE %d
%sCMD ["python", "server.py"]
'''
COMPOSE = '''\
services:
  api:
    build:
      context: ./services/api
    ports: ["8081:8000"]
    user: "10001:10001"
    environment:
      GREETING: hello from the api
      DATABASE_URL:
    healthcheck:
      test: ["CMD", "python", "-c", "import urllib.request as u; u.urlopen('http://localhost:8000/healthz')"]
  frontend:
    build: ./frontend
    ports: ["8080:8080"]
  cache:
    image: redis:7
'''


def team_repository(root: Path) -> Path:
    files = {
        "services/api/server.py": SERVER % ("api", 8000),
        "services/api/Dockerfile": DOCKERFILE % (8000, ""),
        "frontend/server.py": SERVER % ("frontend", 8080),
        "frontend/Dockerfile": DOCKERFILE % (8080, "HEALTHCHECK CMD [\"python\", \"-c\", \"import urllib.request "
                                                     "as u; u.urlopen('http://127.0.0.1:8080/ready')\"]\n"),
        "compose.yaml": COMPOSE,
        "infra/main.tf": "# the team's own infrastructure code\n",
        ".gitignore": ".dockyard/\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env = {"GIT_AUTHOR_NAME": "team", "GIT_AUTHOR_EMAIL": "team@example.com", "GIT_COMMITTER_NAME": "team",
           "GIT_COMMITTER_EMAIL": "team@example.com", "HOME": str(root), "PATH": os.environ["PATH"]}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "the team's services"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def dockyard_command() -> list[str]:
    """The `dockyard` that `pip install` put beside this interpreter, as a team runs it."""
    script = Path(sys.executable).parent / "dockyard"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dockyard.release.cli"]


def test_init_build_and_promote_a_team_repository_to_a_verified_release_on_the_live_cluster(kubeconfig, tmp_path):
    require_engine()
    registry = os.environ.get("DOCKYARD_REGISTRY")
    if not registry:
        pytest.skip("no registry: DOCKYARD_REGISTRY is not set (./scripts/engine up starts one)")
    repo = team_repository(tmp_path / "team")
    project = f"team-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **local.local_engine_env(repo / ".dockyard" / "state", PROJECT_DIR),
           "DOCKYARD_USER": "team", "KUBECONFIG": str(kubeconfig)}
    local.require_engine(env)

    def dockyard(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([*dockyard_command(), *args], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    done = dockyard("init", "--yes", "--target", "kubernetes", "--store", "file", "--registry",
                    f"{registry}/{project}", "--project", project)
    assert done.returncode == 0, done.stderr
    assert "dockyard promote dev --from registry" in done.stdout.splitlines()[-1]
    services = yaml.safe_load((repo / "Pulumi.yaml").read_text())["config"]["dockyard:services"]["value"]
    assert services["api"]["context"] == "services/api" and services["api"]["healthCheckPath"] == "/healthz"
    assert services["frontend"]["healthCheckPath"] == "/ready" and "cache" not in services
    # The repository holds no copy of dockyard, and its own infra/ folder is untouched.
    assert sorted(p.name for p in repo.iterdir() if p.suffix == ".py") == ["__main__.py"]
    assert (repo / "infra" / "main.tf").read_text() == "# the team's own infrastructure code\n"

    namespace = f"{project}-dev"
    try:
        built = dockyard("build", "--local", "--json")
        assert built.returncode == 0, built.stderr[-3000:]
        images = yaml.safe_load(built.stdout)["images"]
        assert sorted(images) == ["api", "frontend"]
        promoted = dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
        assert promoted.returncode == 0, promoted.stderr[-3000:]
        # What runs, as kubectl sees it: each service's pods on the digest the build pushed.
        for service, ref in images.items():
            assert set(pod_digests(namespace, service).values()) == {ref.rsplit("@", 1)[1]}, service
        status = dockyard("status", "dev", "--json")
        dev = yaml.safe_load(status.stdout)["environments"]["dev"]
        assert dev["deployed"] == 1
        assert {s: r.rsplit("@", 1)[1] for s, r in dev["images"].items()} == \
            {s: r.rsplit("@", 1)[1] for s, r in images.items()}
    finally:
        subprocess.run(["pulumi", "destroy", "--yes", "--skip-preview", "-s", "dev", "--cwd", str(repo),
                        "--non-interactive"], env=env, capture_output=True, timeout=600)
        if shutil.which("kubectl") or os.environ.get("DOCKYARD_KUBECTL"):
            try:
                kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
            except subprocess.CalledProcessError:
                pass
