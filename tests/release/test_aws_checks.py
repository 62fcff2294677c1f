"""What the command checks against AWS and the running services: ECR digests and release tags,
ECS deployments after a deploy, health over HTTP, rendered manifests."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import boto3
import pytest

from dockyard.config import load
from dockyard.targets import checks as verify
from tests.release.conftest import REGION, images

ACCOUNT = "123456789012"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def push(ecr, repository: str, content: str) -> str:
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {"digest": content},
                           "layers": []})
    pushed = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=f"build-{content[:8]}")
    return pushed["image"]["imageId"]["imageDigest"]


def test_promote_checks_ecr_digests_and_tags_them_as_releases(dockyard):
    ecr = boto3.client("ecr", region_name=REGION)
    host = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    ecr_images = {}
    for service in ("web", "worker"):
        ecr.create_repository(repositoryName=f"dockyard/{service}", imageTagMutability="IMMUTABLE")
        ecr_images[service] = f"{host}/dockyard/{service}@{push(ecr, f'dockyard/{service}', service)}"
    dockyard.engine.registry_images = ecr_images
    if dockyard.project.environment("registry").store_kind == "ssm":
        dockyard.ssm().put_parameter(Name="/dockyard/registry/release", Type="String", Overwrite=True,
                                     Value=json.dumps({"schema": 1, "images": ecr_images}))
    code, out, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    tags = {t for i in ecr.list_images(repositoryName="dockyard/web")["imageIds"] for t in [i.get("imageTag")] if t}
    assert "release-dev-v1" in tags

    missing = f"{host}/dockyard/web@sha256:{'f' * 64}"
    dockyard.engine.registry_images = {**ecr_images, "web": missing}
    if dockyard.project.environment("registry").store_kind == "ssm":
        dockyard.ssm().put_parameter(Name="/dockyard/registry/release", Type="String", Overwrite=True,
                                     Value=json.dumps({"schema": 1, "images": {**ecr_images, "web": missing}}))
    code, out, _ = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 2 and "is missing (not in ECR repository dockyard/web" in out["error"]["message"]
    _, history, _ = dockyard("history", "dev", "--json")
    assert len(history["releases"]) == 1


def _task(ecs, family: str, image: str) -> str:
    return ecs.register_task_definition(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                        cpu="256", memory="512",
                                        containerDefinitions=[{"name": "web", "image": image}]
                                        )["taskDefinition"]["taskDefinitionArn"]


def test_ecs_check_catches_a_circuit_breaker_rollback(aws):
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName="dockyard-prod")["cluster"]["clusterArn"]
    old = _task(ecs, "dockyard-prod-web", images("v1")["web"])
    new = _task(ecs, "dockyard-prod-web", images("v2")["web"])
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=old, desiredCount=1)
    outputs = {"deployments": {"web": {"cluster": cluster, "service": "web", "taskDefinition": new}}}
    with pytest.raises(verify.VerificationFailed, match="circuit breaker rolled it back"):
        verify.check_ecs(outputs, ecs)
    # A service whose primary deployment runs the stack's task definition passes.
    ecs.create_service(cluster=cluster, serviceName="web-next", taskDefinition=new, desiredCount=1)
    verify.check_ecs({"deployments": {"web": {"cluster": cluster, "service": "web-next", "taskDefinition": new}}},
                     ecs)


def test_image_check_compares_what_the_stack_deployed():
    verify.check_images({"images": images("a")}, images("a"))
    with pytest.raises(verify.VerificationFailed, match="deployed web as"):
        verify.check_images({"images": {**images("a"), "web": images("b")["web"]}}, images("a"))


@pytest.fixture()
def web_server(monkeypatch):
    monkeypatch.setenv("COMMIT_SHA", "abc123")
    path = Path(__file__).resolve().parents[2] / "images" / "web" / "app.py"
    spec = importlib.util.spec_from_file_location("web_for_verify", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def settings(health_path: str = "/healthz"):
    return load({"dockyard:role": "app", "dockyard:services": json.dumps(
        {"web": {"port": 8080, "healthCheckPath": health_path}, "worker": {}})}, stack="prod")


def test_health_check_probes_the_service_and_reads_its_version(web_server):
    seen = verify.check_health(settings(), {"services": {"web": web_server, "worker": None}}, timeout=2)
    assert seen == {"web": "abc123"}


def test_health_check_fails_when_the_service_does_not_answer(web_server):
    with pytest.raises(verify.VerificationFailed, match="did not answer .*/missing"):
        verify.check_health(settings("/missing"), {"services": {"web": web_server}}, timeout=0.2,
                            sleep=lambda _: None)


def test_rendered_manifests_must_carry_the_wanted_images(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {"spec": {"containers": [{"name": "web", "image": images("a")["web"]}]}}}}
    (tmp_path / "1-manifest").mkdir()
    (tmp_path / "1-manifest" / "apps_v1-deployment-web.yaml").write_text(json.dumps(deployment))
    verify.check_rendered(tmp_path, {"web": images("a")["web"]})
    with pytest.raises(verify.VerificationFailed, match="rendered Deployment web"):
        verify.check_rendered(tmp_path, {"web": images("b")["web"]})
