"""ECS rollouts through the command, against a real boto3 ECS client whose responses botocore's Stubber
checks against the ECS model (moto implements no service deployments or revisions): the deploy watches
each service's deployment, then checks the digests ECS resolved; `abort` stops in-flight deployments."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from dockyard.images import ImageRef
from dockyard.release import cli
from dockyard.release.context import AwsClients, Context
from dockyard.release.engine import UpResult
from tests.release.conftest import REGION, SERVICES, FakeEngine, FakeOciRegistries, images, make_project

ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/dockyard-dev"


def service_arn(service: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/dockyard-dev/{service}"


def deployment_arn(service: str, n: int) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/dockyard-dev/{service}/d{n}"


def revision_arn(service: str, n: int) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/dockyard-dev/{service}/r{n}"


class EcsEngine(FakeEngine):
    """The fake engine, exporting `deployments` as the ECS program does."""

    def up(self, stack: str) -> UpResult:
        result = super().up(stack)
        result.outputs["deployments"] = {s: {"cluster": CLUSTER, "service": s,
                                             "taskDefinition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/"
                                                               f"dockyard-dev-{s}:{len(self.ups)}"}
                                         for s in SERVICES}
        return result


class StubbedAws(AwsClients):
    def __init__(self, ecs: Any) -> None:
        super().__init__()
        self._clients["ecs@"] = ecs


class Ecs:
    """Queues ECS responses, shaped (and checked) by the ECS model."""

    def __init__(self) -> None:
        self.client = boto3.client("ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        self.stub = Stubber(self.client)
        self.stub.activate()

    def services(self, deployment: int) -> None:
        self.stub.add_response("describe_services", {"services": [
            {"serviceName": s, "serviceArn": service_arn(s), "clusterArn": CLUSTER,
             "currentServiceDeployment": deployment_arn(s, deployment)} for s in SERVICES], "failures": []},
            {"cluster": CLUSTER, "services": sorted(SERVICES)})

    def deployments(self, n: int, states: dict[str, dict[str, Any]], *, expect: list[str] | None = None) -> None:
        body = []
        for service, state in states.items():
            body.append({"serviceDeploymentArn": deployment_arn(service, n), "serviceArn": service_arn(service),
                         "clusterArn": CLUSTER, "targetServiceRevision": {"arn": revision_arn(service, n)},
                         "sourceServiceRevisions": [{"arn": revision_arn(service, n - 1)}], **state})
        self.stub.add_response("describe_service_deployments", {"serviceDeployments": body, "failures": []},
                               {"serviceDeploymentArns": expect or [deployment_arn(s, n) for s in states]})

    def revisions(self, digests: dict[str, str], n: int) -> None:
        self.stub.add_response("describe_service_revisions", {"serviceRevisions": [
            {"serviceRevisionArn": revision_arn(s, n), "serviceArn": service_arn(s), "clusterArn": CLUSTER,
             "containerImages": [{"containerName": s, "imageDigest": d, "image": f"ghcr.io/acme/{s}:x"}]}
            for s, d in digests.items()], "failures": []},
            {"serviceRevisionArns": [revision_arn(s, n) for s in digests]})

    def stop(self, service: str, n: int) -> None:
        self.stub.add_response("stop_service_deployment", {"serviceDeploymentArn": deployment_arn(service, n)},
                               {"serviceDeploymentArn": deployment_arn(service, n), "stopType": "ROLLBACK"})


def digests(build: str) -> dict[str, str]:
    return {s: ImageRef.parse(r).digest for s, r in images(build).items()}


def done(**extra: Any) -> dict[str, Any]:
    return {"status": "SUCCESSFUL", **extra}


class Command:
    def __init__(self, tmp_path, monkeypatch) -> None:
        self.project = make_project(tmp_path, "file")
        self.engine = EcsEngine(self.project)
        self.engine.registry_images = images("v1")
        self.ecs = Ecs()
        self.logs: list[str] = []
        self.sleeps: list[float] = []
        self.runner = CliRunner()

        def context(_project_dir) -> Context:
            return Context(project=self.project, deployer_factory=lambda: self.engine, aws=StubbedAws(self.ecs.client),
                           registries=FakeOciRegistries(),  # type: ignore[arg-type]
                           user="alice", log=self.logs.append, confirm=None, health_timeout=0.1,
                           ecs_poll_seconds=7, sleep=self.sleeps.append)

        monkeypatch.setattr(cli, "make_context", context)

    def __call__(self, *args: str) -> tuple[int, Any]:
        result = self.runner.invoke(cli.app, [*args, "--json"])
        out = json.loads(result.stdout) if result.stdout.strip() else None
        return result.exit_code, out

    def release(self, build: str) -> None:
        self.engine.registry_images = images(build)
        code, out = self("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
        assert code == 0, out
        self.logs.clear()

    def deployed(self) -> None:
        """Release v1 deployed and verified (deployment 1)."""
        self.release("v1")
        self.ecs.services(1)
        self.ecs.deployments(1, {s: done() for s in SERVICES})
        self.ecs.revisions(digests("v1"), 1)
        code, out = self("deploy", "dev")
        assert code == 0, out
        self.logs.clear()
        self.sleeps.clear()


@pytest.fixture()
def command(tmp_path, monkeypatch, aws) -> Command:
    return Command(tmp_path, monkeypatch)


# ----------------------------------------------------------------------------- verification


def test_deploy_follows_each_phase_once_and_verifies_the_digest_ecs_resolved(command):
    command.release("v1")
    command.ecs.services(1)
    shifting = {"status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
                "targetServiceRevision": {"arn": revision_arn("web", 1), "requestedProductionTrafficWeight": 20.0}}
    command.ecs.deployments(1, {"web": shifting, "worker": {"status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"}})
    command.ecs.deployments(1, {"web": shifting, "worker": done()})
    command.ecs.deployments(1, {"web": {"status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"}},
                            expect=[deployment_arn("web", 1)])
    command.ecs.deployments(1, {"web": done()}, expect=[deployment_arn("web", 1)])
    command.ecs.revisions(digests("v1"), 1)
    code, out = command("deploy", "dev")
    assert code == 0, out
    assert out["verified"] is True
    phases = [line.strip() for line in command.logs if line.strip().startswith(("web:", "worker:"))]
    assert phases == ["web: shifting traffic 20 %", "worker: baking", "worker: completed", "web: baking",
                      "web: completed"]
    # One DescribeServiceDeployments per interval, at the Context's interval.
    assert command.sleeps == [7, 7, 7]
    command.ecs.stub.assert_no_pending_responses()
    _, status = command("status", "dev")
    assert status["environments"]["dev"]["knownGood"] == 1


def test_a_digest_ecs_did_not_resolve_to_fails_naming_service_running_and_wanted(command):
    command.release("v1")
    command.ecs.services(1)
    command.ecs.deployments(1, {s: done() for s in SERVICES})
    command.ecs.revisions({**digests("v1"), "worker": digests("other")["worker"]}, 1)
    code, out = command("deploy", "dev")
    assert code == 1
    message = out["error"]["message"]
    assert "worker" in message and digests("other")["worker"] in message and digests("v1")["worker"] in message
    _, status = command("status", "dev")
    assert status["environments"]["dev"]["knownGood"] is None


def test_a_circuit_breaker_rollback_fails_the_deploy(command):
    command.release("v1")
    command.ecs.services(1)
    command.ecs.deployments(1, {"web": {"status": "ROLLBACK_IN_PROGRESS",
                                        "deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3,
                                                                     "threshold": 3}},
                                "worker": done()})
    command.ecs.deployments(1, {"web": {"status": "ROLLBACK_SUCCESSFUL", "statusReason": "tasks failed to start",
                                        "deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3,
                                                                     "threshold": 3}}},
                            expect=[deployment_arn("web", 1)])
    code, out = command("deploy", "dev")
    assert code == 1
    assert "ECS service web" in out["error"]["message"]
    assert "circuit breaker rolled it back (3 of 3 tasks failed)" in out["error"]["message"]
    assert any("web: rolling back (circuit breaker)" in line for line in command.logs)
    command.ecs.stub.assert_no_pending_responses()


def test_an_alarm_rollback_names_the_alarm(command):
    command.release("v1")
    command.ecs.services(1)
    command.ecs.deployments(1, {"web": {"status": "ROLLBACK_SUCCESSFUL",
                                        "alarms": {"status": "TRIGGERED", "alarmNames": ["dev-5xx", "dev-p99"],
                                                   "triggeredAlarmNames": ["dev-5xx"]}},
                                "worker": done()})
    code, out = command("deploy", "dev")
    assert code == 1 and "alarm dev-5xx rolled it back" in out["error"]["message"]


def test_a_failed_lifecycle_hook_is_named(command):
    command.release("v1")
    command.ecs.services(1)
    hook = "arn:aws:lambda:us-east-1:123456789012:function:smoke"
    command.ecs.deployments(1, {"web": {"status": "ROLLBACK_SUCCESSFUL", "lifecycleHookDetails": [
        {"hookId": "h1", "targetType": "AWS_LAMBDA", "targetArn": hook, "status": "FAILED"}]}, "worker": done()})
    code, out = command("deploy", "dev")
    assert code == 1 and f"lifecycle hook {hook} failed" in out["error"]["message"]


# ----------------------------------------------------------------------------- abort


def test_abort_mid_bake_stops_with_rollback_verifies_the_previous_revision_and_records_it(command):
    command.deployed()
    command.release("v2")
    baking = {"status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"}
    command.ecs.services(2)
    command.ecs.deployments(2, {"web": baking, "worker": baking})
    command.ecs.stop("web", 2)
    command.ecs.stop("worker", 2)
    command.ecs.deployments(2, {s: {"status": "ROLLBACK_IN_PROGRESS"} for s in SERVICES})
    command.ecs.deployments(2, {s: {"status": "ROLLBACK_SUCCESSFUL", "statusReason": "stopped by user",
                                    "rollback": {"reason": "stopped", "serviceRevisionArn": revision_arn(s, 1)}}
                                for s in SERVICES})
    command.ecs.revisions(digests("v1"), 1)
    code, out = command("abort", "dev", "--yes", "--reason", "latency")
    assert code == 0, out
    assert (out["aborted"], out["restored"], out["version"]) == (2, 1, 3)
    assert out["images"] == images("v1") and sorted(out["services"]) == sorted(SERVICES) and out["verified"]
    command.ecs.stub.assert_no_pending_responses()
    assert any("web: rolling back" in line for line in command.logs)
    _, history = command("history", "dev")
    outcomes = {r["version"]: r["outcome"] for r in history["releases"]}
    assert outcomes[2] == "aborted"
    newest = history["releases"][0]
    assert newest["rollback"] == {"of": 2, "to": 1, "cause": "aborted", "reason": "latency"}
    _, status = command("status", "dev")
    dev = status["environments"]["dev"]
    assert (dev["deployed"], dev["knownGood"], dev["held"]["version"]) == (3, 3, 3)
    assert dev["rollback"]["cause"] == "aborted"
    # Held like a rollback: a promotion refuses until it lifts the hold.
    command.engine.registry_images = images("v3")
    code, _ = command("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    assert code == 3


def test_abort_with_nothing_in_flight_says_to_roll_back(command):
    command.deployed()
    command.ecs.services(1)
    command.ecs.deployments(1, {s: done() for s in SERVICES})
    code, out = command("abort", "dev", "--yes")
    assert code == 2
    assert "no ECS deployment of dev is in flight" in out["error"]["message"]
    assert "dockyard rollback dev" in out["error"]["hint"]


def test_abort_that_finds_the_old_revision_running_another_digest_fails_and_labels_nothing(command):
    command.deployed()
    command.release("v2")
    command.ecs.services(2)
    command.ecs.deployments(2, {"web": {"status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"}, "worker": done()})
    command.ecs.stop("web", 2)
    command.ecs.deployments(2, {"web": {"status": "ROLLBACK_SUCCESSFUL",
                                        "rollback": {"serviceRevisionArn": revision_arn("web", 1)}}},
                            expect=[deployment_arn("web", 2)])
    # The worker finished release 2 before the abort: it keeps release 2's digest, web goes back to 1's.
    command.ecs.stub.add_response("describe_service_revisions", {"serviceRevisions": [
        {"serviceRevisionArn": revision_arn("web", 1), "containerImages": [
            {"containerName": "web", "imageDigest": digests("other")["web"]}]},
        {"serviceRevisionArn": revision_arn("worker", 2), "containerImages": [
            {"containerName": "worker", "imageDigest": digests("v2")["worker"]}]}]},
        {"serviceRevisionArns": [revision_arn("web", 1), revision_arn("worker", 2)]})
    code, out = command("abort", "dev", "--yes")
    assert code == 1 and digests("other")["web"] in out["error"]["message"]
    _, status = command("status", "dev")
    dev = status["environments"]["dev"]
    # Recorded (history says release 2 was aborted), but not labelled deployed: it did not verify.
    assert dev["version"] == 3 and dev["deployed"] == 1
    assert dev["images"] == {"web": images("v1")["web"], "worker": images("v2")["worker"]}
