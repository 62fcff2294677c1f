"""Release-tool fixtures: a project on disk, moto for AWS, a fake engine behind the Deployer interface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from typer.testing import CliRunner

from dockyard.errors import Conflict
from dockyard.images import is_digest
from dockyard.release import cli
from dockyard.release.context import AwsClients, Context
from dockyard.release.engine import Preview, StackSummary, UpResult
from dockyard.release.project import Project
from tests.support.pulumi_harness import fake_digest

REGION = "us-east-1"
SERVICES = {"web": {"port": 8080}, "worker": {}}


def ref(service: str, build: str) -> str:
    return f"ghcr.io/acme/{service}@{fake_digest(f'{service}-{build}')}"


def images(build: str) -> dict[str, str]:
    return {s: ref(s, build) for s in SERVICES}


class FakeOciRegistries:
    """Stands in for the OCI registries that the release tests' images live in: every digest is there
    until a test deletes it. The real client is tested against a real registry in tests/registry."""

    def __init__(self) -> None:
        self.deleted: set[str] = set()  # "<host>/<repository>@<digest>"
        self.tags: list[str] = []  # "<host>/<repository>:<tag>@<digest>"

    def delete(self, text: str) -> None:
        self.deleted.add(text)

    def for_ref(self, image_ref: Any) -> Any:
        registry = self

        class Client:
            host = image_ref.registry

            def manifest_digest(self, repository: str, digest: str) -> str | None:
                return None if f"{self.host}/{repository}@{digest}" in registry.deleted else digest

            def tag(self, repository: str, digest: str, tag: str) -> None:
                registry.tags.append(f"{self.host}/{repository}:{tag}@{digest}")

            def delete(self, repository: str, digest: str) -> bool:
                registry.deleted.add(f"{self.host}/{repository}@{digest}")
                return True

        return Client()


class FakeEngine:
    """Stands in for the Pulumi engine: `up` deploys what the stack's source says, as the program would.

    It reads the same release store the real program reads, so what it reports as deployed is
    decided by what the command wrote, not by the test.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.registry_images: dict[str, str] = {}
        self.deployed: dict[str, dict[str, Any]] = {}
        self.locked: set[str] = set()
        self.ups: list[str] = []
        self.destroyed: list[str] = []
        self.last_update: dict[str, Any] = {}
        self.sabotage: dict[str, dict[str, str]] = {}  # stack -> images the "cluster" really runs
        self.before_up: Any = None  # called with the stack name as an update starts
        self.organization = "organization"  # what a self-managed backend calls every organization

    def _release_for(self, stack: str, ssm: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """What the program would read: the newest release, only the services the stack configures."""
        if stack == "registry":
            prebuilt = self.project.environment("registry").settings.prebuilt
            if prebuilt and all(not is_digest(r) for r in prebuilt.values()):
                # Recorded images are what the program publishes (as `dockyard build --local` leaves it).
                self.registry_images = {**self.registry_images, **prebuilt}
            return dict(self.registry_images), {"source": "registry", "version": None}
        env = self.project.environment(stack)
        if env.follows_stack:
            return dict(self.registry_images), {"source": "stack", "version": None}
        store = self.project.store(env, lambda: ssm)
        current = store.current()
        if current is None:
            raise AssertionError(f"engine: {stack} has no release (the program would stop)")
        images = {s: r for s, r in current.release.image_strings().items() if s in env.settings.services}
        return images, {"source": env.store_kind, "version": current.version}

    def up(self, stack: str) -> UpResult:
        if stack in self.locked:
            raise Conflict(f"stack {stack} is locked by another update")
        self.ups.append(stack)
        if self.before_up:
            self.before_up(stack)
        images, release = self._release_for(stack, boto3.client("ssm", region_name=REGION))
        outputs = {"images": self.sabotage.get(stack, images), "release": release, "url": None, "services": {}}
        self.deployed[stack] = outputs
        return UpResult(outputs=outputs, changes={"update": len(images)})

    def preview(self, stack: str) -> Preview:
        if stack in self.locked:
            raise Conflict(f"stack {stack} is locked by another update")
        return Preview(changes={"create": 2, "same": 3}, text=f"Previewing update ({stack})\n+ 2 to create")

    def outputs(self, stack: str) -> dict[str, Any]:
        if stack == "registry":
            return {"images": dict(self.registry_images)}
        return dict(self.deployed.get(stack, {}))

    def qualified_name(self, stack: str) -> str:
        return f"{self.organization}/{self.project.name}/{stack}"

    def destroy(self, stack: str) -> None:
        self.destroyed.append(stack)
        self.deployed.pop(stack, None)

    def stacks(self) -> list[StackSummary]:
        return [StackSummary(name=s, last_update=self.last_update.get(s)) for s in self.deployed]

    def set_config(self, stack: str, values: dict[str, str]) -> None:
        """As `pulumi config set --path dockyard:<key>` does: into the stack's file."""
        path = self.project.config_file(stack)
        data = yaml.safe_load(path.read_text()) or {}
        config = data.setdefault("config", {})
        for key, value in values.items():
            head, *rest = key.split(".")
            if not rest:
                config[f"dockyard:{head}"] = value
                continue
            node = config.setdefault(f"dockyard:{head}", {})
            for part in rest[:-1]:
                node = node.setdefault(part, {})
            node[rest[-1]] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def copy_secret_config(self, source: str, dest: str, paths: list[str]) -> None:
        """Secrets cannot be decrypted here: record the request and mark the top-level keys secret in dest."""
        self.copied_secrets = (source, dest, list(paths))
        path = self.project.config_file(dest)
        data = yaml.safe_load(path.read_text())
        for key in paths:
            if "." not in key:
                data["config"][key] = {"secure": f"v1:re-encrypted-for-{dest}"}
        path.write_text(yaml.safe_dump(data))


def write_stack(directory: Path, stack: str, config: dict[str, Any]) -> None:
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def make_project(directory: Path, backend: str) -> Project:
    (directory / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    registry = {"dockyard:role": "registry", "dockyard:registry": "external", "dockyard:services": {"web": {}, "worker": {}},
                "dockyard:prebuilt": images("seed"), "dockyard:publish": backend == "ssm"}
    write_stack(directory, "registry", registry)
    for env in ("dev", "staging", "prod"):
        write_stack(directory, env, {"dockyard:role": "app", "dockyard:imageSource": backend,
                                     "dockyard:services": SERVICES, "dockyard:database": False,
                                     "dockyard:trust": "none", "aws:region": REGION})
    write_stack(directory, "preview", {"dockyard:role": "app", "dockyard:imageSource": "stack",
                                       "dockyard:services": SERVICES})
    return Project(directory)


class Dockyard:
    """Runs the command through its entry point and returns (exit code, stdout, stderr)."""

    def __init__(self, project: Project, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.project, self.engine = project, engine
        self.runner = CliRunner()
        self.logs: list[str] = []
        self.registries = FakeOciRegistries()

        def context(_project_dir: Path | None) -> Context:
            return Context(project=project, deployer_factory=lambda: engine, aws=AwsClients(),
                           registries=self.registries,  # type: ignore[arg-type]
                           user="alice", log=self.logs.append, confirm=None, health_timeout=0.1)

        monkeypatch.setattr(cli, "make_context", context)

    def __call__(self, *args: str) -> tuple[int, Any, str]:
        result = self.runner.invoke(cli.app, list(args))
        out = result.stdout
        if "--json" in args:
            out = json.loads(out)
        return result.exit_code, out, result.stderr

    def ssm(self) -> Any:
        return boto3.client("ssm", region_name=REGION)


@pytest.fixture(params=["ssm", "file"])
def backend(request) -> str:
    return request.param


@pytest.fixture()
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture()
def dockyard(tmp_path, backend, aws, monkeypatch) -> Dockyard:
    project = make_project(tmp_path, backend)
    engine = FakeEngine(project)
    engine.registry_images = images("seed")
    if backend == "ssm":
        registry_manifest = json.dumps({"schema": 1, "images": images("seed"), "source": "registry"})
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/dockyard/registry/release",
                                                              Value=registry_manifest, Type="String")
    return Dockyard(project, engine, monkeypatch)


def publish_registry(d: Dockyard, build: str) -> None:
    """A new registry release, as `dockyard build` would leave it."""
    d.engine.registry_images = images(build)
    if d.project.environment("registry").store_kind == "ssm":
        d.ssm().put_parameter(Name="/dockyard/registry/release", Type="String", Overwrite=True,
                              Value=json.dumps({"schema": 1, "images": images(build), "source": "registry"}))
