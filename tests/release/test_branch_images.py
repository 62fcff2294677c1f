"""Branch-only images: `branch destroy` and `branch gc` remove from the registry the digests only the branch ran."""

from __future__ import annotations

import json
import sys

import boto3
import pytest

from dockyard.errors import DockyardError
from dockyard.release.registries.branch_images import branch_only
from tests.release.conftest import REGION, ref

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def ecr():
    return boto3.client("ecr", region_name=REGION)


def push(service: str, content: str) -> str:
    """An image pushed to moto's ECR; returns its pinned reference."""
    layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1,
             "digest": f"sha256:{content:0>64}"}  # moto derives the image digest from the layers
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": [layer],
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "digest": f"sha256:{content:0>64}", "size": 1}})
    pushed = ecr().put_image(repositoryName=f"dockyard/{service}", imageManifest=manifest, imageTag=f"build-{content}")
    return f"{HOST}/dockyard/{service}@{pushed['image']['imageId']['imageDigest']}"


def digests(service: str) -> set[str]:
    return {i["imageDigest"] for i in ecr().list_images(repositoryName=f"dockyard/{service}")["imageIds"]}


def digest(reference: str) -> str:
    return reference.rsplit("@", 1)[1]


@pytest.fixture()
def ecr_images(dockyard):
    """dev runs images that the registry published to ECR; returns them."""
    for service in ("web", "worker"):
        ecr().create_repository(repositoryName=f"dockyard/{service}")
    published = {"web": push("web", "aaa1"), "worker": push("worker", "bbb1")}
    publish(dockyard, published)
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    return published


def publish(d, images: dict[str, str]) -> None:
    d.engine.registry_images = dict(images)
    if d.project.environment("registry").store_kind == "ssm":
        d.ssm().put_parameter(Name="/dockyard/registry/release", Type="String", Overwrite=True,
                              Value=json.dumps({"schema": 1, "images": images, "source": "registry"}))


def test_destroy_removes_the_digest_only_the_branch_ran(dockyard, ecr_images):
    built = push("web", "ccc1")
    code, _, err = dockyard("branch", "up", "feature-x", "--base", "dev", "--image", f"web={built}", "--json")
    assert code == 0, err
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert digest(built) not in digests("web")
    assert digests("web") == {digest(ecr_images["web"])} and digests("worker") == {digest(ecr_images["worker"])}
    assert out["removedImages"] == [built]


def test_destroy_removes_every_digest_in_the_branch_history(dockyard, ecr_images):
    first, second = push("web", "ccc1"), push("web", "ccc2")
    for image in (first, second):
        code, _, err = dockyard("branch", "up", "feature-x", "--image", f"web={image}", "--json")
        assert code == 0, err
    code, out, err = dockyard("branch", "destroy", "feature-x")
    assert code == 0, err
    assert digests("web") == {digest(ecr_images["web"])}
    assert "Removed 2 branch-only image(s)" in out


def test_destroy_keeps_a_digest_that_dev_also_ran(dockyard, ecr_images):
    built = push("web", "ccc1")
    code, _, err = dockyard("branch", "up", "feature-x", "--image", f"web={built}", "--json")
    assert code == 0, err
    # merged: main's build publishes the same digest and dev runs it
    publish(dockyard, {**ecr_images, "web": built})
    code, _, err = dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes", "--json")
    assert code == 0, err
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert digest(built) in digests("web")
    assert out["removedImages"] == []


def test_a_digest_dev_ran_in_an_older_release_is_kept(dockyard, ecr_images):
    built = push("web", "ccc1")
    publish(dockyard, {**ecr_images, "web": built})
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")
    publish(dockyard, ecr_images)
    dockyard("promote", "dev", "--from", "registry", "--no-deploy", "--yes")  # dev moved on
    dockyard("branch", "up", "feature-x", "--image", f"web={built}")
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert digest(built) in digests("web") and out["removedImages"] == []


def test_an_image_already_gone_is_reported_not_failed(dockyard, ecr_images):
    built = push("web", "ccc1")
    dockyard("branch", "up", "feature-x", "--image", f"web={built}")
    ecr().batch_delete_image(repositoryName="dockyard/web", imageIds=[{"imageDigest": digest(built)}])
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert out["removedImages"] == [] and out["skippedImages"] == [{"image": built, "reason": "already gone"}]
    assert digests("web") == {digest(ecr_images["web"])}


def test_gc_removes_the_images_of_the_branches_it_destroys(dockyard, ecr_images):
    gone, open_ = push("web", "ccc1"), push("web", "ddd1")
    dockyard("branch", "up", "gone", "--image", f"web={gone}")
    dockyard("branch", "up", "still-open", "--image", f"web={open_}")
    code, out, err = dockyard("branch", "gc", "--keep", "still-open", "--json")
    assert code == 0, err
    assert digests("web") == {digest(ecr_images["web"]), digest(open_)}
    assert out["removedImages"] == [gone]


def test_a_non_branch_stack_is_refused_and_its_images_stay(dockyard, ecr_images):
    before = digests("web") | digests("worker")
    code, out, _ = dockyard("branch", "destroy", "dev", "--json")
    assert code == 2 and "not a branch stack" in out["error"]["message"]
    assert digests("web") | digests("worker") == before and dockyard.engine.destroyed == []


def test_nothing_is_removed_when_an_environment_cannot_be_read(dockyard, ecr_images):
    built = push("web", "ccc1")
    dockyard("branch", "up", "feature-x", "--image", f"web={built}")
    real_outputs = dockyard.engine.outputs

    def outputs(stack):
        if stack == "preview":  # the project's stack-following environment
            raise DockyardError("pulumi failed for stack preview: backend unreachable")
        return real_outputs(stack)

    dockyard.engine.outputs = outputs
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err  # the stack is still destroyed
    assert digest(built) in digests("web")
    assert out["removedImages"] == []
    assert [s["image"] for s in out["skippedImages"]] == [built]
    assert "preview" in out["skippedImages"][0]["reason"]


def test_images_outside_ecr_go_to_the_oci_remover_or_are_reported(dockyard, ecr_images, monkeypatch):
    elsewhere = ref("web", "branch-build")  # ghcr.io
    dockyard("branch", "up", "feature-x", "--image", f"web={elsewhere}")
    monkeypatch.setitem(sys.modules, "dockyard.release.registries.oci", None)  # no remover for other registries
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert out["removedImages"] == []
    assert out["skippedImages"] == [{"image": elsewhere, "reason": "skipped (registry not supported)"}]


def test_images_outside_ecr_are_removed_by_the_oci_remover(dockyard, ecr_images, monkeypatch):
    elsewhere = ref("web", "branch-build")
    registry = {elsewhere}

    class Oci:
        @staticmethod
        def delete_oci_image(reference: str) -> None:
            registry.remove(reference)

    monkeypatch.setitem(sys.modules, "dockyard.release.registries.oci", Oci)
    dockyard("branch", "up", "feature-x", "--image", f"web={elsewhere}")
    code, out, err = dockyard("branch", "destroy", "feature-x", "--json")
    assert code == 0, err
    assert registry == set() and out["removedImages"] == [elsewhere]


D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize("branch, others, expected", [
    ([f"r.io/a@{D1}"], [], [f"r.io/a@{D1}"]),
    ([f"r.io/a@{D1}"], [f"r.io/a@{D1}"], []),
    ([f"r.io/a:pr-7@{D1}"], [f"r.io/a:v1@{D1}"], []),           # a tag does not make it another image
    ([f"r.io/a@{D1}"], [f"q.io/mirror/a@{D1}"], []),             # same content elsewhere: keep, to be safe
    ([f"r.io/a@{D1}", f"r.io/a:x@{D1}", f"r.io/b@{D2}"], [], [f"r.io/a@{D1}", f"r.io/b@{D2}"]),
])
def test_branch_only_selects_digests_no_other_release_names(branch, others, expected):
    assert [str(r) for r in branch_only(branch, others)] == expected
