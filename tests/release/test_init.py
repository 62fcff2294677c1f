"""`dockyard init` on team repositories laid out unlike images/*/: what it finds, writes, asks and refuses.

Every written project is loaded back through dockyard's own configuration (the validators the engine runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dockyard.errors import BadInput, Conflict
from dockyard.release.commands.init import InitOptions, init
from dockyard.release.project import Project
from dockyard.release.scaffold.discover import discover
from dockyard.release.scaffold.dockerfile import run_hints

API_DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE} AS build
EXPOSE 9999
FROM ${PYTHON_IMAGE}
WORKDIR /srv
COPY app.py .
USER 10001:10001
EXPOSE 8000/tcp
CMD ["python", "app.py"]
"""
FRONTEND_DOCKERFILE = """\
FROM nginx:1.27
COPY site/ /usr/share/nginx/html/
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s \\
  CMD wget -q -O /dev/null http://127.0.0.1:8080/ready || exit 1
USER 101
"""
WORKER_DOCKERFILE = """\
FROM python:3.12-slim
# a queue worker: no port; its health is a command
HEALTHCHECK CMD ["python", "-m", "worker", "--check"]
CMD ["python", "-m", "worker"]
"""
COMPOSE = """\
services:
  api:
    build:
      context: ./services/api
    ports: ["127.0.0.1:8081:8000/tcp"]
    user: "10001"
    environment:
      LOG_LEVEL: debug
      WORKERS: 4
      DATABASE_PASSWORD: hunter2
      FROM_HOST:
      URL: ${PUBLIC_URL}
    healthcheck:
      test: ["CMD", "python", "-c", "import urllib.request as u; u.urlopen('http://localhost:8000/healthz')"]
      interval: 10s
  web-ui:
    build:
      context: .
      dockerfile: frontend/Dockerfile
    ports:
      - target: 8080
        published: 80
    environment: ["API_URL=http://api:8000", "DEBUG"]
  queue-worker:
    build: ./jobs
    command: python -m worker --queue default
  db:
    image: postgres:16
"""


def team_repo(root: Path, *, compose: bool = True) -> Path:
    files = {"services/api/Dockerfile": API_DOCKERFILE, "services/api/app.py": "print('api')\n",
             "frontend/Dockerfile": FRONTEND_DOCKERFILE, "frontend/site/index.html": "<h1>hi</h1>\n",
             "jobs/Dockerfile": WORKER_DOCKERFILE,
             "node_modules/some-lib/Dockerfile": "FROM scratch\n",
             "infra/main.tf": "# the team's own infra/ folder\n"}
    if compose:
        files["compose.yaml"] = COMPOSE
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def flags(**kwargs) -> InitOptions:
    return InitOptions(**{"target": "kubernetes", "store": "file", "registry": "127.0.0.1:5000/team", "yes": True,
                          **kwargs})


def services_map(root: Path) -> dict:
    return yaml.safe_load((root / "Pulumi.yaml").read_text())["config"]["dockyard:services"]["value"]


def test_a_dockerfile_says_how_its_last_stage_runs() -> None:
    hints = run_hints(API_DOCKERFILE)
    assert (hints.port, hints.user, hints.health_command) == (8000, "10001:10001", None)
    front = run_hints(FRONTEND_DOCKERFILE)
    assert front.port == 8080 and front.user == "101"
    assert front.health_command == ("sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/ready || exit 1")
    assert run_hints(WORKER_DOCKERFILE).health_command == ("python", "-m", "worker", "--check")
    assert run_hints("FROM a\nHEALTHCHECK CMD true\nFROM b\n").health_command is None


def test_compose_gives_contexts_ports_health_environment_and_user(tmp_path: Path) -> None:
    found = discover(team_repo(tmp_path))
    by_name = {s.name: s for s in found.services}
    assert sorted(by_name) == ["api", "queue-worker", "web-ui"]
    api = by_name["api"]
    assert (api.context, api.dockerfile, api.port, api.health_path, api.user) == (
        "services/api", "services/api/Dockerfile", 8000, "/healthz", "10001")
    # Only plain values: a secret-looking one, one from the host and an interpolated one are left out, and said so.
    assert api.environment == {"LOG_LEVEL": "debug", "WORKERS": "4"}
    assert any("DATABASE_PASSWORD" in n and "secret" in n for n in found.notes)
    assert any("FROM_HOST" in n for n in found.notes) and any("URL" in n for n in found.notes)
    ui = by_name["web-ui"]
    assert (ui.context, ui.dockerfile, ui.port, ui.health_path, ui.user) == (
        ".", "frontend/Dockerfile", 8080, "/ready", "101")
    assert ui.environment == {"API_URL": "http://api:8000"}
    worker = by_name["queue-worker"]
    assert worker.port is None and worker.health_command == ("python", "-m", "worker", "--check")
    assert worker.command == ("python", "-m", "worker", "--queue", "default")
    assert any(n.startswith("db: runs postgres:16") for n in found.notes)
    assert not any("node_modules" in n for n in found.notes)


def test_without_compose_every_dockerfile_is_a_service_named_after_its_folder(tmp_path: Path) -> None:
    root = team_repo(tmp_path, compose=False)
    (root / "tools").mkdir()
    (root / "tools" / "Dockerfile.migrate").write_text("FROM alpine\n")
    (root / "legacy" / "api").mkdir(parents=True)
    (root / "legacy" / "api" / "Dockerfile").write_text("FROM alpine\nEXPOSE 3000\n")
    found = {s.name: s for s in discover(root).services}
    assert sorted(found) == ["frontend", "jobs", "legacy-api", "migrate", "services-api"]
    assert found["services-api"].context == "services/api" and found["services-api"].port == 8000
    assert found["migrate"].dockerfile == "tools/Dockerfile.migrate" and found["migrate"].context == "tools"
    assert found["frontend"].health_path == "/ready" and found["frontend"].port == 8080


@pytest.mark.parametrize("target", ["kubernetes", "ecs", "nomad"])
@pytest.mark.parametrize("store", ["file", "ssm"])
def test_the_written_project_loads_through_dockyards_own_configuration(tmp_path: Path, target: str,
                                                                        store: str) -> None:
    root = team_repo(tmp_path)
    options = flags(target=target, store=store, region="eu-west-1",
                    registry="ecr" if target == "ecs" else "registry.example.com/team")
    result = init(root, options, ask=None)
    assert sorted(result.written) == ["Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.registry.yaml", "Pulumi.yaml",
                                      "__main__.py"]
    project = Project(root)
    registry = project.environment("registry").settings
    for name, build in registry.builds.items():
        assert (root / build.dockerfile).is_file(), name
    assert registry.builds["web-ui"].context == "." and registry.builds["web-ui"].dockerfile == "frontend/Dockerfile"
    for env in ("dev", "prod"):
        settings = project.environment(env).settings
        assert settings.image_source == store
        assert {s: v.port for s, v in settings.services.items()} == {"api": 8000, "web-ui": 8080, "queue-worker": None}
        assert settings.services["api"].health_check_path == "/healthz"
        # Two services listen: the front takes /, the other is routed by path (the validator demands one default).
        assert (settings.services["web-ui"].path, settings.services["api"].path) == (None, "/api/*")
        assert settings.services["queue-worker"].health_check_command == ("python", "-m", "worker", "--check")
    assert project.environment("prod").settings.services["api"].desired_count == 2
    # The team's own infra/ folder is left as it was: dockyard is imported by its own name.
    assert (root / "infra" / "main.tf").read_text() == "# the team's own infra/ folder\n"
    assert "from dockyard.program import main" in (root / "__main__.py").read_text()


def test_an_existing_file_is_refused_by_name_and_nothing_is_written(tmp_path: Path) -> None:
    root = team_repo(tmp_path)
    (root / "Pulumi.dev.yaml").write_text("config: {}\n")
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(Conflict, match=r"^Pulumi\.dev\.yaml already exists in .*wrote nothing"):
        init(root, flags(), ask=None)
    assert sorted(p.name for p in root.iterdir()) == before
    assert (root / "Pulumi.dev.yaml").read_text() == "config: {}\n"


def test_without_a_terminal_what_cannot_be_inferred_is_a_flag(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DOCKYARD_REGISTRY", raising=False)
    root = team_repo(tmp_path)
    with pytest.raises(BadInput, match="--registry is needed and there is no terminal") as err:
        init(root, InitOptions(target="kubernetes", store="file"), ask=None)
    assert err.value.hint.startswith("pass --registry")
    with pytest.raises(BadInput, match="--target is needed") as err:
        init(root, InitOptions(registry="r.example.com"), ask=None)
    assert "--yes to take kubernetes" in err.value.hint
    assert not (root / "Pulumi.yaml").exists()


def test_a_port_without_a_health_check_needs_its_path_or_yes(tmp_path: Path) -> None:
    root = tmp_path
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM nginx\nEXPOSE 8080\n")
    with pytest.raises(BadInput, match="app listens on 8080 and has no health check"):
        init(root, flags(yes=False), ask=None)
    result = init(root, flags(yes=False, health={"app": "/status"}), ask=None)
    assert services_map(root)["app"]["healthCheckPath"] == "/status"
    assert result.notes == ["not a git repository: each image's commit comes from $DOCKYARD_COMMIT instead"]


def test_on_a_terminal_it_asks_for_what_no_flag_gave_and_repeats_a_wrong_answer(tmp_path: Path) -> None:
    root = tmp_path
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM nginx\nEXPOSE 8080\n")
    answers = {"Deploy to": ["swarm", "nomad"], "Keep releases in": [""], "Push images to": ["ghcr.io/acme/shop"],
               "app: the HTTP path": ["not a path", "/up"]}
    asked = []

    def ask(question: str, default: str | None) -> str:
        key = next(k for k in answers if question.startswith(k))
        asked.append(key)
        answer = answers[key].pop(0) if answers[key] else ""
        return answer or (default or "")

    result = init(root, InitOptions(), ask=ask)
    assert asked == ["Deploy to", "Deploy to", "Keep releases in", "Push images to", "app: the HTTP path",
                     "app: the HTTP path"]
    dev = Project(root).environment("dev").settings
    assert (dev.target, dev.image_source, dev.services["app"].health_check_path) == ("nomad", "file", "/up")
    registry = yaml.safe_load((root / "Pulumi.registry.yaml").read_text())["config"]
    assert registry["dockyard:oci"] == {"host": "ghcr.io", "prefix": "acme/shop"}
    assert result.next_commands[-1].startswith("dockyard promote dev --from registry")


def test_the_command_exits_3_on_an_existing_file_and_0_with_one_json_document(tmp_path: Path) -> None:
    root = team_repo(tmp_path)
    command = [sys.executable, "-m", "dockyard.release.cli", "init", "--yes", "--target", "kubernetes",
               "--registry", "127.0.0.1:5000/team", "--json", "--dir", str(root)]
    env = {**os.environ, "PULUMI_CONFIG": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["target"] == "kubernetes" and out["store"] == "file" and out["registry"] == "127.0.0.1:5000/team"
    assert sorted(s["name"] for s in out["services"]) == ["api", "queue-worker", "web-ui"]
    assert out["next"][-1].startswith("dockyard promote dev --from registry")
    again = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert again.returncode == 3
    assert json.loads(again.stdout)["error"]["code"] == "conflict"
    assert again.stderr.startswith("error: Pulumi.yaml, __main__.py, Pulumi.registry.yaml, Pulumi.dev.yaml, "
                                   "Pulumi.prod.yaml already exist in ")
    assert "Traceback" not in again.stderr


def test_of_several_services_on_ports_one_takes_the_default_route_and_the_others_a_path(tmp_path: Path) -> None:
    for name in ("app", "web", "admin"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM nginx\nEXPOSE 8080\nHEALTHCHECK CMD curl -f http://localhost:8080/\n")
    init(tmp_path, flags(), ask=None)
    dev = Project(tmp_path).environment("dev").settings
    assert {n: s.path for n, s in dev.services.items()} == {"admin": "/admin/*", "app": "/app/*", "web": None}
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.registry.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).unlink()
    init(tmp_path, flags(default_route="admin"), ask=None)
    dev = Project(tmp_path).environment("dev").settings
    assert {n: s.path for n, s in dev.services.items()} == {"admin": None, "app": "/app/*", "web": "/web/*"}
    with pytest.raises(BadInput, match=r"no service api \(--health, --default-route\); services: admin, app, web"):
        init(tmp_path, flags(default_route="api"), ask=None)


def test_a_repository_without_a_dockerfile_is_refused_with_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "lib").mkdir(parents=True)
    (tmp_path / "node_modules" / "lib" / "Dockerfile").write_text("FROM scratch\n")  # a dependency's, not a service
    with pytest.raises(BadInput, match="no Dockerfile and no compose file with a build in") as err:
        init(tmp_path, flags(), ask=None)
    assert "add one per service" in err.value.hint and list(tmp_path.iterdir()) == [tmp_path / "node_modules"]


def test_what_dockyards_configuration_would_refuse_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = team_repo(tmp_path)
    with pytest.raises(BadInput, match=r"^Pulumi\.registry\.yaml: dockyard:oci\.prefix: got 'Team_A'"):
        init(root, flags(registry="registry.example.com/Team_A"), ask=None)
    with pytest.raises(BadInput, match=r"--default-route queue-worker: it listens on no port; expected one of api, "
                                       r"web-ui"):
        init(root, flags(default_route="queue-worker"), ask=None)
    assert not (root / "Pulumi.yaml").exists() and not (root / "__main__.py").exists()
