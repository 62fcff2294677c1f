"""An image's user and revision read from a real distribution registry on loopback, by digest: by the
command before a release is written (root refused with the key), and by the program at deploy time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from dockyard import config
from dockyard.app import image_users
from dockyard.errors import ConfigError
from dockyard.images import ImageRef
from dockyard.release.registries import image_config
from dockyard.release.registries.oci import RegistryClients
from tests.support.oci_registry import start_registry

REVISION = "org.opencontainers.image.revision"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def no_docker_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@dataclass
class Ctx:
    registries: RegistryClients = field(default_factory=RegistryClients)


@dataclass
class Env:
    settings: Any


def env(**web: Any) -> Env:
    return Env(config.load({"dockyard:role": "app", "dockyard:target": "kubernetes",
                            "dockyard:services": {"web": {"port": 8080, **web}}}, stack="dev"))


def test_the_command_reads_user_and_revision_and_refuses_root(registry):
    good = f"{registry.host}/theirs/web@{registry.put_image('theirs/web', 'a', user='101:101', labels={REVISION: 'c0ffee'})}"
    root = f"{registry.host}/theirs/web@{registry.put_image('theirs/web', 'b', user='')}"
    named = f"{registry.host}/theirs/web@{registry.put_image('theirs/web', 'c', user='www-data')}"
    facts = image_config.inspect(Ctx(), env(), {"web": good})
    assert facts["web"].user == "101:101" and facts["web"].commit == "c0ffee"
    with pytest.raises(ConfigError, match=r"dockyard:services.web.runAsUser: web sha256:\w+ would run as root"):
        image_config.inspect(Ctx(), env(), {"web": root})
    with pytest.raises(ConfigError, match="the user name 'www-data'"):
        image_config.inspect(Ctx(), env(), {"web": named})
    assert image_config.inspect(Ctx(), env(runAsUser=33), {"web": named})["web"].user == "www-data"


def test_the_program_reads_the_user_by_digest_and_leaves_a_missing_image_to_its_pull(registry):
    digest = registry.put_image("theirs/redis", "r", user="999")
    assert image_users.read_user(f"{registry.host}/theirs/redis@{digest}") == "999"
    missing = str(ImageRef.parse_pinned(f"{registry.host}/theirs/redis@sha256:{'0' * 64}"))
    assert image_users.read_user(missing) is None
