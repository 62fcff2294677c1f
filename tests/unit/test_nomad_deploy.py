"""What dockyard does with what Nomad reports after a submit: a fake Nomad API, a real file store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard import config
from dockyard.targets.nomad import job as nomad_job
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.targets.nomad import deploy as nomad_deploy
from dockyard.release.stores.file import FileStore
from dockyard.targets.checks import VerificationFailed
from tests.unit.app_fixtures import IMAGES, SERVICES

OLD = IMAGES
NEW = {**IMAGES, "web": IMAGES["web"].rsplit("@", 1)[0] + "@sha256:" + "1" * 64}


@dataclass
class FakeNomad:
    """Nomad after a registration: the failed deployment, then the revert's version (or none)."""

    revert: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    registered: list[dict[str, Any]] = field(default_factory=list)
    address: str = "http://127.0.0.1:4646"
    namespace: str = "default"

    def register(self, spec):
        self.registered.append(spec)
        self.history.append({"Version": 1, "JobModifyIndex": 20, "Meta": spec["Job"]["Meta"]})
        if self.revert:
            self.history.append({"Version": 2, "JobModifyIndex": 30, "Meta": self.history[0]["Meta"]})
        return {"JobModifyIndex": 20}

    def versions(self, job_id):
        return self.history

    def job(self, job_id):
        return {"Version": self.history[-1]["Version"], "Stable": True, "Meta": self.history[-1]["Meta"],
                "TaskGroups": [{"Name": "web", "Count": 0}, {"Name": "worker", "Count": 0}]}

    def deployments(self, job_id):
        reason = "Failed due to unhealthy allocations" + (" - rolling back to job version 0" if self.revert else "")
        return [{"ID": "d1" * 8, "JobVersion": 1, "Status": "failed", "StatusDescription": reason},
                {"ID": "d2" * 8, "JobVersion": 2, "Status": "successful", "StatusDescription": ""}]

    def allocations(self, job_id):
        return []


@dataclass
class Ctx:
    log: Any = lambda _: None
    user: str = "test"
    health_timeout: float = 1.0

    def timestamp(self) -> str:
        return "2026-01-01T00:00:00Z"


@dataclass
class Env:
    name: str
    settings: Any


def setup(tmp_path: Path, fake: FakeNomad, monkeypatch) -> tuple[FileStore, Env, dict[str, Any], int]:
    settings = config.load({"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
                            "dockyard:services": SERVICES,
                            "dockyard:nomad": {"address": fake.address, "renderDir": str(tmp_path)}}, stack="dev")
    store = FileStore(tmp_path / "releases")
    first = store.append(Release(images={s: ImageRef.parse_pinned(r) for s, r in OLD.items()}), expected=None)
    fake.history.append({"Version": 0, "JobModifyIndex": 10,
                          "Meta": {nomad_job.RELEASE_META: f"file:{first.version}"}})
    second = store.append(Release(images={s: ImageRef.parse_pinned(r) for s, r in NEW.items()}),
                          expected=first.version)
    path = tmp_path / "dockyard-dev.json"
    path.write_text(json.dumps(nomad_job.job(settings, NEW, f"file:{second.version}")))
    monkeypatch.setattr(nomad_deploy, "api_for", lambda *_a, **_k: fake)
    monkeypatch.setattr(nomad_deploy, "DEPLOYMENT_TIMEOUT", 5.0)
    outputs = {"renderDir": str(tmp_path), "nomadJob": {"id": "dockyard-dev", "file": str(path)}}
    return store, Env("dev", settings), outputs, second.version


def test_a_revert_by_nomad_becomes_a_release_that_restores_the_previous_one_and_holds(tmp_path, monkeypatch):
    fake = FakeNomad(revert=True)
    store, env, outputs, failed = setup(tmp_path, fake, monkeypatch)
    with pytest.raises(nomad_deploy.NomadReverted) as err:
        nomad_deploy.deploy_and_verify(Ctx(), env, store, failed, outputs, NEW)
    assert nomad_job.images_of(fake.registered[0]) == NEW
    current = store.current()
    assert current.version == failed + 1
    assert current.release.image_strings() == OLD
    assert current.release.rollback.to_dict() == {"of": failed, "to": 1, "cause": "reverted",
                                                   "reason": "Failed due to unhealthy allocations - rolling back "
                                                             "to job version 0"}
    assert store.labels()["deployed"] == store.labels()["known-good"] == current.version
    assert store.hold().version == current.version
    assert "held" in err.value.message


def test_a_failed_deployment_without_a_revert_is_a_failed_verification_and_writes_nothing(tmp_path, monkeypatch):
    fake = FakeNomad(revert=False)
    store, env, outputs, failed = setup(tmp_path, fake, monkeypatch)
    with pytest.raises(VerificationFailed, match="failed: Failed due to unhealthy allocations"):
        nomad_deploy.deploy_and_verify(Ctx(), env, store, failed, outputs, NEW)
    assert store.current().version == failed and store.hold() is None


def test_a_rendered_job_with_other_images_is_refused_before_anything_is_submitted(tmp_path, monkeypatch):
    fake = FakeNomad(revert=False)
    store, env, outputs, failed = setup(tmp_path, fake, monkeypatch)
    with pytest.raises(VerificationFailed, match="runs web as"):
        nomad_deploy.deploy_and_verify(Ctx(), env, store, failed, outputs, OLD)
    assert fake.registered == []
