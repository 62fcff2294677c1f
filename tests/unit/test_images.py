"""Image references: real-world shapes parse, malformed ones are refused, unpinned ones say how to pin."""

from __future__ import annotations

import pytest

from dockyard.errors import ImageRefError
from dockyard.images import ImageRef, is_digest, pin

D = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("nginx", None, "nginx", None, None),
    ("nginx:1.27-alpine", None, "nginx", "1.27-alpine", None),
    (f"nginx@{D}", None, "nginx", None, D),
    (f"library/nginx:latest@{D}", None, "library/nginx", "latest", D),
    ("bitnami/redis:7.2", None, "bitnami/redis", "7.2", None),
    (f"docker.io/library/python:3.12-slim@{D}", "docker.io", "library/python", "3.12-slim", D),
    (f"123456789012.dkr.ecr.us-east-1.amazonaws.com/dockyard/web@{D}",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com", "dockyard/web", None, D),
    (f"ghcr.io/acme/platform/api:v1.4.2@{D}", "ghcr.io", "acme/platform/api", "v1.4.2", D),
    ("localhost:5000/web:dev", "localhost:5000", "web", "dev", None),
    (f"localhost/web@{D}", "localhost", "web", None, D),
    (f"registry.example.com:8443/team/svc__x/a-b.c@{D}", "registry.example.com:8443", "team/svc__x/a-b.c", None, D),
    ("[::1]:5000/web:1", "[::1]:5000", "web", "1", None),
    ("10.0.0.7:5000/app", "10.0.0.7:5000", "app", None, None),
    ("Registry/app:1", "Registry", "app", "1", None),
    ("gcr.io/project/image:" + "t" * 128, "gcr.io", "project/image", "t" * 128, None),
])
def test_real_world_references_parse_and_round_trip(text, registry, repository, tag, digest):
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.pinned is (digest is not None)
    assert str(ref) == text


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    (" web", "spaces"),
    ("Web:1", "invalid repository"),
    ("web:", "invalid tag"),
    ("web:-x", "invalid tag"),
    ("web:" + "t" * 129, "invalid tag"),
    ("web@sha256:abc", "dockyard pins images by sha256"),
    ("web@sha256:" + "A" * 64, "dockyard pins images by sha256"),
    ("web@sha512:" + "a" * 128, "dockyard pins images by sha256"),
    ("web@", "malformed digest"),
    ("web@@sha256:" + "a" * 64, "invalid"),
    ("web//api", "invalid repository"),
    ("web/", "invalid repository"),
    ("-web", "invalid repository"),
    ("web..api", "invalid repository"),
    ("exa_mple.com/web", "invalid registry host"),
    ("example.com:port/web", "invalid"),
    ("a/" * 130 + "b", "longer than 255"),
])
def test_malformed_references_are_refused(text, reason):
    with pytest.raises(ImageRefError, match=reason):
        ImageRef.parse(text)


def test_non_string_is_refused_with_its_type():
    with pytest.raises(ImageRefError, match="must be a string, got int"):
        ImageRef.parse(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["web:latest", "web:1.2", "ghcr.io/acme/web", "localhost:5000/web:dev"])
def test_unpinned_reference_is_refused_with_how_to_get_the_digest(text):
    with pytest.raises(ImageRefError) as err:
        ImageRef.parse_pinned(text)
    assert f"{text} has no digest" in err.value.message
    assert "@sha256:<digest>" in err.value.message
    assert f"docker buildx imagetools inspect {text}" in err.value.hint


def test_unpinned_error_names_what_it_was():
    with pytest.raises(ImageRefError, match=r"^dockyard:prebuilt.web: web:1.2 has no digest"):
        ImageRef.parse_pinned("web:1.2", what="dockyard:prebuilt.web")


def test_pin_builds_repository_at_digest_dropping_any_tag():
    assert pin("123456789012.dkr.ecr.us-east-1.amazonaws.com/dockyard/web", D) == \
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/dockyard/web@{D}"
    assert pin("localhost:5000/web:dev", D) == f"localhost:5000/web@{D}"
    with pytest.raises(ImageRefError):
        pin("web", "sha256:short")


def test_docker_hub_shorthand_resolves_to_docker_io():
    assert ImageRef.parse("nginx").domain == "docker.io"
    assert ImageRef.parse("ghcr.io/a/b").domain == "ghcr.io"


def test_is_digest():
    assert is_digest(D)
    assert not is_digest(D.upper()) and not is_digest("sha256:") and not is_digest(None)  # type: ignore[arg-type]
