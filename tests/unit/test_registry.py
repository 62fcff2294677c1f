"""The registry program under mocks: repositories, images, manifest parameter, outputs, errors."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

import pulumi
from infra.manifest import Release
from infra.program import main
from tests.support.pulumi_harness import ECR_HOST, DockyardMocks, fake_digest, run_program

PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
REPO = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
IMAGE = "docker:index/image:Image"
PARAMETER = "aws:ssm/parameter:Parameter"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def registry(**config):
    return run_program(main, config={"dockyard:role": "registry", **config}, stack="registry")


def test_builds_two_services_into_protected_repositories_and_publishes_pinned_images():
    run = registry()

    repos = {r.inputs["name"]: r for r in run.of_type(REPO)}
    assert set(repos) == {"dockyard/web", "dockyard/worker"}
    for repo in repos.values():
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
        assert repo.protect and repo.retain_on_delete

    images = {r.name: r for r in run.of_type(IMAGE)}
    assert set(images) == {"web-image", "worker-image"}
    web = images["web-image"].inputs
    assert web["imageName"].startswith(f"{ECR_HOST}/dockyard/web:build-")
    assert web["build"]["context"].endswith("/images/web")
    assert web["build"]["dockerfile"].endswith("/images/web/Dockerfile")
    assert web["build"]["platform"] == "linux/amd64"
    assert web["build"]["args"] == {"COMMIT_SHA": "unknown"}
    assert web["registry"]["server"] == ECR_HOST
    assert web["registry"]["username"] == "AWS"

    assert set(run.outputs["images"]) == {"web", "worker"}
    assert all(PINNED.match(ref) for ref in run.outputs["images"].values())
    assert run.outputs["images"]["web"] == f"{ECR_HOST}/dockyard/web@{fake_digest(web['imageName'])}"
    assert run.outputs["repositories"] == {"web": f"{ECR_HOST}/dockyard/web",
                                           "worker": f"{ECR_HOST}/dockyard/worker"}
    assert run.outputs["releaseParameter"] == "/dockyard/registry/release"


def test_manifest_parameter_holds_the_published_images_in_the_documented_schema():
    run = registry()
    parameter = run.one(PARAMETER)
    assert parameter.inputs["name"] == "/dockyard/registry/release"
    assert parameter.inputs["type"] == "String"
    assert parameter.protect and parameter.retain_on_delete
    release = Release.from_json(parameter.inputs["value"])
    assert release.image_strings() == run.outputs["images"]
    assert release.source == "registry"
    assert json.loads(parameter.inputs["value"])["schema"] == 1


def test_manifest_text_changes_only_when_an_image_changes(monkeypatch):
    first = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}}).one(PARAMETER).inputs["value"]
    again = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}}).one(PARAMETER).inputs["value"]
    changed = registry(**{"dockyard:prebuilt": {"worker": DIGEST_B}}).one(PARAMETER).inputs["value"]
    assert first == again
    assert first != changed
    monkeypatch.setenv("DOCKYARD_COMMIT", "3f2c9a1")
    rebuilt = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}})
    assert rebuilt.one(IMAGE).inputs["build"]["args"] == {"COMMIT_SHA": "3f2c9a1"}
    assert rebuilt.one(PARAMETER).inputs["value"] != first


def test_prebuilt_digest_is_recorded_in_the_managed_repository_without_a_build():
    run = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}})
    assert [r.name for r in run.of_type(IMAGE)] == ["web-image"]
    assert run.outputs["images"]["worker"] == f"{ECR_HOST}/dockyard/worker@{DIGEST_A}"
    assert len(run.of_type(REPO)) == 2


def test_external_registry_manages_no_repositories_and_records_every_image():
    prebuilt = {"web": f"ghcr.io/acme/web:1.4@{DIGEST_A}", "worker": f"registry.example.com:5000/acme/worker@{DIGEST_B}"}
    run = registry(**{"dockyard:registry": "external", "dockyard:prebuilt": prebuilt})
    assert not run.of_type(REPO) and not run.of_type(IMAGE) and not run.of_type(LIFECYCLE)
    assert run.outputs["images"] == prebuilt
    assert run.outputs["repositories"] == {"web": "ghcr.io/acme/web", "worker": "registry.example.com:5000/acme/worker"}
    assert Release.from_json(run.one(PARAMETER).inputs["value"]).image_strings() == prebuilt


def test_publish_false_writes_no_parameter():
    run = registry(**{"dockyard:publish": "false"})
    assert not run.of_type(PARAMETER)
    assert run.outputs["releaseParameter"] is None


def test_configured_services_and_build_options_reach_the_build():
    run = registry(**{"dockyard:services": {"web": {"platform": "linux/arm64", "buildArgs": {"PY": "3.12"}}}})
    image = run.one(IMAGE).inputs["build"]
    assert image["platform"] == "linux/arm64"
    assert image["args"] == {"COMMIT_SHA": "unknown", "PY": "3.12"}
    assert [r.inputs["name"] for r in run.of_type(REPO)] == ["dockyard/web"]


@pytest.mark.parametrize("config, culprit", [
    ({"dockyard:prebuilt": {"web": "web:latest"}}, "dockyard:prebuilt.web: web:latest has no digest"),
    ({"dockyard:publsh": "true"}, "dockyard:publsh is not a dockyard setting"),
    ({"dockyard:registry": "external"}, "dockyard:prebuilt has no image for web, worker"),
    ({"dockyard:keepImages": "0"}, "dockyard:keepImages: got '0'"),
    ({"dockyard:services": {"api": {}}}, "dockyard:services.api.context: images/api is not a directory"),
    ({"dockyard:services": {"web": {"port": 8080}}}, "dockyard:services.web.port applies to role app"),
])
def test_bad_config_stops_before_any_resource(config, culprit):
    mocks = DockyardMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program(main, config={"dockyard:role": "registry", **config}, stack="registry", mocks=mocks)
    assert culprit in str(err.value)
    assert mocks.created == []


def test_missing_role_names_the_key():
    with pytest.raises(pulumi.RunError, match="dockyard:role is not set"):
        run_program(main, config={}, stack="registry")


def test_repository_and_lifecycle_payloads_are_accepted_by_ecr():
    run = registry(**{"dockyard:keepImages": "15", "dockyard:untaggedExpiryDays": "3"})
    model = boto3.session.Session(region_name="us-east-1").client("ecr").meta.service_model
    validator = ParamValidator()
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        for repo in run.of_type(REPO):
            params = {
                "repositoryName": repo.inputs["name"],
                "imageTagMutability": repo.inputs["imageTagMutability"],
                "imageScanningConfiguration": repo.inputs["imageScanningConfiguration"],
                "encryptionConfiguration": repo.inputs["encryptionConfigurations"][0],
            }
            report = validator.validate(params, model.operation_model("CreateRepository").input_shape)
            assert not report.has_errors(), report.generate_report()
            ecr.create_repository(**params)
        for policy in run.of_type(LIFECYCLE):
            repository = "dockyard/" + policy.name.removesuffix("-lifecycle")
            ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=policy.inputs["policy"])
            stored = json.loads(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
            counts = {r["rulePriority"]: r["selection"]["countNumber"] for r in stored["rules"]}
            assert counts[2] == 3 and counts[3] == 15
