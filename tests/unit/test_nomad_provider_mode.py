"""Nomad through the provider (`nomad.address`, no `renderDir`): a failed `up` whose deployment Nomad
reverted is recorded and held; the engine refreshes first so Nomad's own revert never wedges the next
`up`; and a release that changes one service leaves the other groups exactly as Nomad compares them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard import config, targets
from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import Release
from dockyard.release.commands import promotion
from dockyard.release.stores.file import FileStore
from dockyard.targets.nomad import deploy as nomad_deploy
from dockyard.targets.nomad import job as nomad_job
from dockyard.targets.checks import VerificationFailed
from tests.unit.app_fixtures import SERVICES
from tests.unit.test_nomad_deploy import NEW, OLD, Ctx, Env

ADDRESS = "http://127.0.0.1:4646"


def provider_settings(**nomad: Any):
    return config.load({"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
                        "dockyard:services": SERVICES, "dockyard:nomad": {"address": ADDRESS, **nomad}},
                       stack="dev")


def combined(spec: dict, group: str) -> dict:
    """What Nomad compares to decide whether a group's allocations are replaced: the group itself and
    the job meta every task of it inherits (NOMAD_META_*)."""
    body = spec["Job"]
    found = next(g for g in body["TaskGroups"] if g["Name"] == group)
    return {"jobMeta": body.get("Meta"), "group": found}


def test_a_release_that_changes_web_leaves_the_worker_group_as_nomad_compares_it():
    settings = provider_settings()
    first = nomad_job.job(settings, OLD, "file:1")
    second = nomad_job.job(settings, NEW, "file:2")
    assert combined(first, "worker") == combined(second, "worker"), "worker would restart for a web-only release"
    assert combined(first, "web") != combined(second, "web")


class ProviderNomad:
    """Nomad after the provider registered release 2 as job version 1: its deployment failed and Nomad
    reverted to version 0 (release 1's job) as version 2."""

    address, namespace = ADDRESS, "default"

    def __init__(self, settings, revert: bool = True) -> None:
        self.versions_ = [{"Version": 0, "JobModifyIndex": 10, **nomad_job.job(settings, OLD, "file:1")["Job"]},
                          {"Version": 1, "JobModifyIndex": 20, **nomad_job.job(settings, NEW, "file:2")["Job"]}]
        if revert:
            self.versions_.append({"Version": 2, "JobModifyIndex": 30,
                                   **nomad_job.job(settings, OLD, "file:1")["Job"]})
        self.revert = revert

    def versions(self, job_id):
        return list(reversed(self.versions_))

    def job(self, job_id):
        return {**self.versions_[-1], "Stable": True,
                "TaskGroups": [{**g, "Count": 0} for g in self.versions_[-1]["TaskGroups"]]}

    def deployments(self, job_id):
        reason = "Failed due to unhealthy allocations" + (" - rolling back to job version 0" if self.revert else "")
        found = [{"ID": "d1" * 8, "JobVersion": 1, "Status": "failed", "StatusDescription": reason}]
        if self.revert:
            found.insert(0, {"ID": "d2" * 8, "JobVersion": 2, "Status": "successful", "StatusDescription": ""})
        return found

    def allocations(self, job_id):
        return []


class FailingEngine:
    """The engine as the provider leaves it when the Job resource's deployment fails (detach = false)."""

    def __init__(self) -> None:
        self.ups = 0

    def up(self, stack):
        self.ups += 1
        raise DockyardError(f"pulumi failed for stack {stack}: nomad_job.nomad-job: deployment failed: "
                            "Failed due to unhealthy allocations - rolling back to job version 0")


def stored(tmp_path) -> tuple[FileStore, int]:
    store = FileStore(tmp_path / "releases")
    first = store.append(Release(images={s: ImageRef.parse_pinned(r) for s, r in OLD.items()}), expected=None)
    store.label("deployed", first.version)
    store.label("known-good", first.version)
    second = store.append(Release(images={s: ImageRef.parse_pinned(r) for s, r in NEW.items()}),
                          expected=first.version)
    return store, second.version


class DeployCtx(Ctx):
    def __init__(self, engine) -> None:
        self.deployer = engine
        self.log = lambda _: None
        self.user, self.health_timeout = "test", 1.0


@pytest.mark.parametrize("revert", [True, False])
def test_a_failed_provider_up_is_checked_with_nomad_and_a_revert_is_recorded_and_held(tmp_path, monkeypatch, revert):
    settings = provider_settings()
    fake = ProviderNomad(settings, revert=revert)
    monkeypatch.setattr(nomad_deploy, "api_for", lambda *_a, **_k: fake)
    monkeypatch.setattr(nomad_deploy, "DEPLOYMENT_TIMEOUT", 5.0)
    store, failed = stored(tmp_path)
    env = Env("dev", settings)
    if revert:
        with pytest.raises(nomad_deploy.NomadReverted) as err:
            promotion.deploy_release(DeployCtx(FailingEngine()), env, store, failed, NEW)
        current = store.current()
        assert current.version == failed + 1 and current.release.image_strings() == OLD
        assert current.release.rollback.cause == "reverted" and current.release.rollback.to == 1
        assert store.hold() is not None and store.labels()["deployed"] == current.version
        assert "Nomad reverted to release 1" in err.value.message
    else:
        # No revert: evidence about the app, so promote's own automatic rollback can act on it.
        with pytest.raises(VerificationFailed, match="Failed due to unhealthy allocations"):
            promotion.deploy_release(DeployCtx(FailingEngine()), env, store, failed, NEW)
        assert store.current().version == failed and store.hold() is None


def test_a_provider_stack_is_refreshed_before_up_so_a_revert_by_nomad_never_wedges_it():
    assert targets.of(provider_settings()).refresh_before_up(provider_settings()) is True
    rendering = provider_settings(renderDir="rendered")
    assert targets.of(rendering).refresh_before_up(rendering) is False


def test_the_engine_refreshes_the_stacks_its_target_asks_for(tmp_path, monkeypatch):
    from dockyard.release import engine as engine_module
    from dockyard.release.engine import AutomationDeployer

    (tmp_path / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  dockyard:role: app\n  dockyard:target: nomad\n  dockyard:imageSource: file\n"
        f"  dockyard:services: {{web: {{port: 8080}}}}\n  dockyard:nomad: {{address: '{ADDRESS}'}}\n"
        "  dockyard:trust: none\n")
    seen: list[list[str]] = []

    def engine(args, cwd, on_output):  # the `pulumi up` run: its arguments, and an event log it wrote
        seen.append(args)
        events = Path(args[args.index("--event-log") + 1])
        events.write_text(json.dumps({"resOutputsEvent": {"metadata": {
            "type": "pulumi:pulumi:Stack", "new": {"outputs": {}}}}}) + "\n")

    monkeypatch.setattr(engine_module, "run_pulumi", engine)
    AutomationDeployer(tmp_path).up("dev")
    assert seen and "--refresh" in seen[0]
