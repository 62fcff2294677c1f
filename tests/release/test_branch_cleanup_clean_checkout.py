"""branch destroy / gc from a clean checkout (CI): which images other previews still run is read from the
backend's stacks and their release stores, never from the config files that happen to be here."""

from __future__ import annotations

from tests.release.test_branch_images import digest, digests, ecr_images, push  # noqa: F401 (fixture)


def clean_checkout(dockyard) -> None:
    """What a CI runner checks out: the committed stack files, none of the branch stacks' files."""
    for path in dockyard.project.dir.glob("Pulumi.branch-*.yaml"):
        path.unlink()


def test_destroy_from_a_clean_checkout_keeps_the_digest_another_preview_runs(dockyard, ecr_images):
    shared = push("web", "ccc1")  # two pull requests with the same build inputs: one build-<hash> digest
    only_one = push("worker", "ddd1")
    code, _, err = dockyard("branch", "up", "pr-1", "--base", "dev", "--image", f"web={shared}",
                            "--image", f"worker={only_one}")
    assert code == 0, err
    code, _, err = dockyard("branch", "up", "pr-2", "--base", "dev", "--image", f"web={shared}")
    assert code == 0, err
    clean_checkout(dockyard)
    code, out, err = dockyard("branch", "destroy", "pr-1", "--base", "dev", "--json")
    assert code == 0, err
    assert digest(shared) in digests("web"), "the image pr-2's preview runs was deleted"
    assert digest(only_one) not in digests("worker")
    assert out["removedImages"] == [only_one]
    assert not (dockyard.project.dir / "Pulumi.branch-pr-2.yaml").exists()  # nothing written for pr-2


def test_gc_from_a_clean_checkout_keeps_the_digest_a_kept_preview_runs(dockyard, ecr_images):
    shared = push("web", "ccc1")
    dockyard("branch", "up", "gone", "--image", f"web={shared}")
    dockyard("branch", "up", "open", "--image", f"web={shared}")
    clean_checkout(dockyard)
    code, out, err = dockyard("branch", "gc", "--keep", "open", "--base", "dev", "--json")
    assert code == 0, err
    assert out["destroyed"] == ["branch-gone"]
    assert digest(shared) in digests("web") and out["removedImages"] == []


def test_a_stack_whose_release_store_cannot_be_found_keeps_every_image_and_is_named(dockyard, ecr_images):
    built = push("web", "ccc1")
    dockyard("branch", "up", "pr-1", "--image", f"web={built}")
    # A stack in the backend this checkout has no file for and that is no branch: its store is unknown.
    dockyard.engine.deployed["qa"] = {"images": {}, "release": {"source": "ssm", "version": 3}}
    code, out, err = dockyard("branch", "destroy", "pr-1", "--json")
    assert code == 0, err  # the stack itself is destroyed
    assert digest(built) in digests("web") and out["removedImages"] == []
    assert [s["image"] for s in out["skippedImages"]] == [built]
    assert "qa" in out["skippedImages"][0]["reason"]


def test_a_backend_that_cannot_list_its_stacks_keeps_every_image(dockyard, ecr_images):
    from dockyard.errors import DockyardError

    built = push("web", "ccc1")
    dockyard("branch", "up", "pr-1", "--image", f"web={built}")

    def stacks():
        raise DockyardError("pulumi failed: backend unreachable")

    dockyard.engine.stacks = stacks
    code, out, err = dockyard("branch", "destroy", "pr-1", "--json")
    assert code == 0, err
    assert digest(built) in digests("web") and out["removedImages"] == []
    assert "cannot list the backend's stacks" in out["skippedImages"][0]["reason"]
