"""Dashboard fixtures: a project on disk with file stores, the demo's story told through the `dockyard`
command (the engine faked behind the Deployer interface, as in tests/release), the dashboard served
by uvicorn on loopback, and headless Chromium when Debian's packages are installed."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockyard.release import cli
from dockyard.release.context import AwsClients, Context
from dockyard.release.insights.changelog import REVISION_LABEL
from dockyard.release.registries.oci import RegistryClients
from dockyard.release.project import Project
from dockyard.release.ui.command import listen
from dockyard.release.ui.engine_reads import EngineReads
from dockyard.release.ui.service import Dashboards
from dockyard.release.ui.web import create_app
from tests.support import parts
from tests.release.conftest import SERVICES, FakeEngine, FakeOciRegistries, write_stack
from tests.support.pulumi_harness import fake_digest

BRANCH = "feature/banner"
BRANCH_URL = "http://preview.shop.example:10042/"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".dockyard" / "screenshots"


class Clock:
    """The story's time: each command an hour after the one before, ending about now."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def tick(self, hours: float = 1.0) -> None:
        self.moment += timedelta(hours=hours)


@dataclass
class Story:
    """A project and the `dockyard` command run on it (exit code, parsed --json or stdout, stderr)."""

    project: Project
    engine: FakeEngine
    clock: Clock
    registries: Any
    registry: Any = None  # tests.support.oci_registry.LocalRegistry when images live in a real one
    logs: list[str] = field(default_factory=list)
    revisions: dict[str, str] = field(default_factory=dict)  # build -> the commit its images carry as a label

    def image(self, service: str, build: str) -> str:
        if self.registry is None:
            return f"ghcr.io/acme/{service}@{fake_digest(f'{service}-{build}')}"
        labels = {REVISION_LABEL: self.revisions[build]} if build in self.revisions else None
        digest = self.registry.put_image(f"acme/{service}", f"{service}-{build}", labels=labels)
        return f"{self.registry.host}/acme/{service}@{digest}"

    def images(self, build: str) -> dict[str, str]:
        return {s: self.image(s, build) for s in SERVICES}

    def context(self, _project_dir: Path | None = None) -> Context:
        return Context(project=self.project, deployer_factory=lambda: self.engine, aws=AwsClients(),
                       registries=self.registries, user="alice", log=self.logs.append, confirm=None,
                       health_timeout=0.1, now=self.clock)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.clock.tick()
        original = cli.make_context
        cli.make_context = self.context
        try:
            result = CliRunner().invoke(cli.app, list(args))
        finally:
            cli.make_context = original
        return result.exit_code, result.stdout, result.stderr

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, f"dockyard {' '.join(args)} exited {code}: {err}"
        return out


def make_project(directory: Path) -> Project:
    (directory / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    write_stack(directory, "registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                        "dockyard:services": {"web": {}, "worker": {}}, "dockyard:publish": False,
                                        # what an external registry records; the fake engine serves its own images
                                        "dockyard:prebuilt": {s: f"ghcr.io/acme/{s}@{fake_digest(s)}" for s in SERVICES}})
    for env in ("dev", "prod"):
        write_stack(directory, env, {"dockyard:role": "app", "dockyard:imageSource": "file",
                                     "dockyard:services": SERVICES, "dockyard:database": False,
                                     "dockyard:trust": "none", "aws:region": "us-east-1"})
    return Project(directory)


def new_story(directory: Path, registry: Any = None, *, start: datetime | None = None) -> Story:
    project = make_project(directory)
    story = Story(project=project, engine=FakeEngine(project),
                  clock=Clock(start or datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=12)),
                  registries=RegistryClients() if registry is not None else FakeOciRegistries(), registry=registry)
    return story


def tell_the_demo_story(story: Story) -> dict[str, dict[str, str]]:
    """The demo's release story: dev and prod on two releases, prod rolled back by hand (held), a
    broken release in dev rolled back automatically (held), a branch preview with its own web."""
    first = story.images("r1")
    # Only web changes after the first release, as in the demo; worker keeps its digest.
    builds = {"r1": first, **{b: {**first, "web": story.image("web", b)} for b in ("r2", "r3")}}
    story.engine.registry_images = builds["r1"]
    story.ok("promote", "dev", "--from", "registry", "--yes", "--reason", "first release")
    story.ok("promote", "prod", "--from", "dev", "--yes", "--reason", "ship release 1")
    story.engine.registry_images = builds["r2"]
    story.ok("promote", "dev", "--from", "registry", "--yes", "--reason", "new web")
    story.ok("promote", "prod", "--from", "dev", "--yes", "--reason", "ship release 2")
    story.ok("rollback", "prod", "--to", "1", "--yes", "--reason", "release 2 misbehaves")
    story.engine.registry_images = builds["r3"]
    story.engine.sabotage["dev"] = builds["r2"]  # the cluster keeps running the old pods: verification fails
    code, _, err = story("promote", "dev", "--from", "registry", "--yes", "--reason", "a broken web")
    assert code == 1 and "rolled back automatically" in err, err
    del story.engine.sabotage["dev"]
    builds["banner"] = {"web": story.image("web", "banner")}
    story.ok("branch", "up", BRANCH, "--base", "dev", "--image", f"web={builds['banner']['web']}")
    stack = story.project.branch_stacks()[0]
    story.engine.deployed[stack]["url"] = BRANCH_URL
    story.engine.last_update[stack] = story.clock()
    return builds


def dashboards(story: Story, *, min_interval: float = 0.0) -> Dashboards:
    reads = EngineReads(story.context())
    reads.refresh()
    return Dashboards(story.context(), reads, idle_for=timedelta(days=7), idle_text="7d", min_interval=min_interval)


@dataclass
class Served:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(app: Any, host: str = "127.0.0.1") -> Served:
    """The app on a free loopback port, served by uvicorn in a thread, as `dockyard ui` serves it."""
    import uvicorn

    sock = listen(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return Served(url=f"http://{host}:{sock.getsockname()[1]}/", server=server, thread=thread)


@pytest.fixture()
def aws_region(monkeypatch) -> None:
    # The fake engine makes an SSM client (never used with file stores); boto3 needs a region for it.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture()
def story(tmp_path, aws_region) -> Story:
    return new_story(tmp_path)


@pytest.fixture()
def told(story) -> Story:
    tell_the_demo_story(story)
    return story


@pytest.fixture()
def served(told) -> Iterator[Served]:
    running = serve(create_app(dashboards(told)))
    yield running
    running.stop()


# ----------------------------------------------------------------------------- the browser


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                              else None)
    return (browser, driver) if browser and driver else None


@pytest.fixture()
def browser() -> Iterator[Any]:
    paths = chromium_paths()
    if paths is None:
        parts.missing("chromium", "no headless Chromium: apt-get install chromium chromium-driver (scripts/setup "
                                  "does, as root on Debian)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dockyard-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1500,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
