"""The registry program under mocks: repositories, images, manifest parameter, outputs, errors."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

import pulumi
from dockyard.manifest import Release
from dockyard.program import main
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
    # Relative paths and no credentials: nothing in the inputs differs between runners or runs.
    assert web["build"]["context"] == "images/web"
    assert web["build"]["dockerfile"] == "images/web/Dockerfile"
    assert web["build"]["platform"] == "linux/amd64"
    assert set(web["build"]["args"]) == {"COMMIT_SHA"}
    assert re.match(r"^[0-9a-f]{40}(-dirty)?$", web["build"]["args"]["COMMIT_SHA"])
    assert "registry" not in web and "cacheFrom" not in web["build"]

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


def test_manifest_text_changes_only_when_an_image_changes():
    first = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}}).one(PARAMETER).inputs["value"]
    again = registry(**{"dockyard:prebuilt": {"worker": DIGEST_A}}).one(PARAMETER).inputs["value"]
    changed = registry(**{"dockyard:prebuilt": {"worker": DIGEST_B}}).one(PARAMETER).inputs["value"]
    assert first == again
    assert first != changed


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
    assert image["args"]["PY"] == "3.12" and set(image["args"]) == {"COMMIT_SHA", "PY"}
    assert [r.inputs["name"] for r in run.of_type(REPO)] == ["dockyard/web"]


@pytest.mark.parametrize("config, culprit", [
    ({"dockyard:prebuilt": {"web": "web:latest"}}, "dockyard:prebuilt.web: web:latest has no digest"),
    ({"dockyard:publsh": "true"}, "dockyard:publsh is not a dockyard setting"),
    ({"dockyard:registry": "external"}, "dockyard:prebuilt has no image for web, worker"),
    ({"dockyard:keepImages": "0"}, "dockyard:keepImages: got '0'"),
    ({"dockyard:services": {"api": {}}}, "dockyard:services.api.context: images/api is not a directory"),
    ({"dockyard:services": {"web": {"port": 8080, "prot": 8080}}}, "dockyard:services.web.prot is not a setting"),
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


# ----------------------------------------------------------------------------- rebuilds (nothing changed: no build)

def _git(cwd, *args):
    import subprocess
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "HOME": str(cwd), "PATH": "/usr/bin:/bin:/usr/local/bin"}).stdout.strip()


@pytest.fixture
def two_service_repo(tmp_path):
    """A project with web and worker; the second commit touches web only."""
    project = tmp_path / "project"
    for service in ("web", "worker"):
        (project / "images" / service).mkdir(parents=True)
        (project / "images" / service / "Dockerfile").write_text(f"FROM scratch\nCOPY {service}.py /\n")
        (project / "images" / service / f"{service}.py").write_text("print('v1')\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "both")
    first = _git(project, "rev-parse", "HEAD")
    (project / "images" / "web" / "web.py").write_text("print('v2')\n")
    _git(project, "commit", "-q", "-am", "web only")
    second = _git(project, "rev-parse", "HEAD")
    return project, first, second


def _registry_run(project_dir, mocks=None):
    from dockyard import config
    from dockyard.registry import run as run_registry

    def program():
        settings = config.load({"dockyard:role": "registry"}, stack="registry",
                               discovered_services=["web", "worker"], organization="organization",
                               project="dockyard")
        run_registry(settings, project_dir=project_dir)

    return run_program(program, config={"dockyard:role": "registry"}, stack="registry", mocks=mocks)


def test_second_run_with_nothing_changed_gives_identical_build_inputs(two_service_repo, tmp_path):
    project, _, _ = two_service_repo
    first = _registry_run(project)
    # The next run sees this stack's previous outputs, as a real engine would, and runs
    # from another checkout directory, as a fresh CI runner does.
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(project), str(clone))
    previous = DockyardMocks(stack_outputs={"organization/dockyard/registry": first.outputs})
    second = _registry_run(clone, mocks=previous)
    inputs = lambda run: {r.name: r.inputs for r in run.of_type(IMAGE)}  # noqa: E731
    assert inputs(first) and inputs(first) == inputs(second)
    assert first.outputs["images"] == second.outputs["images"]


def test_commit_sha_is_the_last_commit_that_changed_the_service(two_service_repo, monkeypatch):
    project, first, second = two_service_repo
    monkeypatch.setenv("GITHUB_SHA", "f" * 40)  # the repository's commit must not leak into every service
    args = {r.name: r.inputs["build"]["args"]["COMMIT_SHA"] for r in _registry_run(project).of_type(IMAGE)}
    assert args == {"web-image": second, "worker-image": first}


def test_oci_registry_builds_into_the_configured_host_and_prefix():
    run = registry(**{"dockyard:registry": "oci", "dockyard:oci": {"host": "127.0.0.1:5000", "prefix": "acme/shop"}})
    assert not run.of_type(REPO) and not run.of_type(LIFECYCLE)
    names = sorted(r.inputs["imageName"].split(":build-")[0] for r in run.of_type(IMAGE))
    assert names == ["127.0.0.1:5000/acme/shop/web", "127.0.0.1:5000/acme/shop/worker"]
    assert run.outputs["repositories"] == {"web": "127.0.0.1:5000/acme/shop/web",
                                           "worker": "127.0.0.1:5000/acme/shop/worker"}
    assert run.outputs["images"]["web"].startswith("127.0.0.1:5000/acme/shop/web@sha256:")


@pytest.mark.parametrize("config, culprit", [
    ({"dockyard:registry": "oci"}, "dockyard:registry is 'oci' but dockyard:oci is not set"),
    ({"dockyard:registry": "oci", "dockyard:oci": {"host": "Bad Host"}}, "dockyard:oci.host: got 'Bad Host'"),
    ({"dockyard:registry": "oci", "dockyard:oci": {"host": "ghcr.io", "prefix": "Acme"}}, "dockyard:oci.prefix"),
    ({"dockyard:registry": "oci", "dockyard:oci": {"host": "ghcr.io", "user": "x"}}, "dockyard:oci.user is not"),
    ({"dockyard:oci": {"host": "ghcr.io"}}, "dockyard:oci applies to dockyard:registry 'oci' only"),
    ({"dockyard:services": {"worker": {"builder": "packer"}}}, "services.worker.builder is 'packer'"),
    ({"dockyard:services": {"worker": {"builder": "kaniko"}}}, "dockyard:services.worker.builder: got 'kaniko'"),
])
def test_bad_registry_settings_name_the_key(config, culprit):
    mocks = DockyardMocks()
    with pytest.raises(pulumi.RunError) as err:
        run_program(main, config={"dockyard:role": "registry", **config}, stack="registry", mocks=mocks)
    assert culprit in str(err.value)
    assert mocks.created == []
