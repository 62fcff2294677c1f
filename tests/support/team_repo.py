"""A team's own repository, laid out unlike images/*/, and `dockyard` run in it as the team runs it.

services/api/ and frontend/ (small HTTP servers), a compose.yaml naming them and a redis it does not
build, and the team's own infra/ folder: a Python package that refuses to be imported, so a program
that imported `infra` instead of `dockyard` would stop right there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dockyard.release.commands import build_local as local

PROJECT_DIR = Path(__file__).resolve().parents[2]

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
        "infra/__init__.py": "raise ImportError('the team\\'s own infra package, not dockyard')\n",
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


class TeamRun:
    """`dockyard` in the team's repository: its own state directory, the engine the set-up built."""

    def __init__(self, repo: Path, env: dict[str, str] | None = None) -> None:
        self.repo = repo
        self.env = {**os.environ, **local.local_engine_env(repo / ".dockyard" / "state", PROJECT_DIR),
                    "DOCKYARD_USER": "team", **(env or {})}
        local.require_engine(self.env)

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([*dockyard_command(), *args], cwd=self.repo, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def pulumi(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pulumi", *args, "--cwd", str(self.repo), "--non-interactive"], env=self.env,
                              capture_output=True, text=True, timeout=600)
