"""The release manifest: documented schema in, deterministic JSON out, bad documents refused."""

from __future__ import annotations

import json

import pytest

from dockyard.errors import ManifestError
from dockyard.manifest import Release

WEB = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dockyard/web@sha256:" + "a" * 64
DOC = {"schema": 1, "images": {"web": WEB}, "source": "registry:v14", "commit": "3f2c", "by": "alice",
       "reason": "promote for release 2026.11", "at": "2026-11-23T10:00:00Z"}


def test_documented_example_round_trips():
    release = Release.from_json(json.dumps(DOC))
    assert release.image_strings() == {"web": WEB}
    assert (release.source, release.by, release.reason) == ("registry:v14", "alice", "promote for release 2026.11")
    assert json.loads(release.to_json()) == DOC


def test_serialization_is_deterministic():
    a = Release.from_dict({"schema": 1, "images": {"web": WEB, "api": WEB.replace("web", "api")}})
    b = Release.from_dict({"schema": 1, "images": {"api": WEB.replace("web", "api"), "web": WEB}})
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize("text, message", [
    ("not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    (json.dumps({**DOC, "schema": 2}), "schema is 2"),
    (json.dumps({**DOC, "schema": True}), "schema is True"),
    (json.dumps({k: v for k, v in DOC.items() if k != "schema"}), "schema is None"),
    (json.dumps({**DOC, "images": {}}), "non-empty object"),
    (json.dumps({**DOC, "images": {"web": "web:latest"}}), "images.web: web:latest has no digest"),
    (json.dumps({**DOC, "images": {"web": 7}}), "images.web: expected a string"),
    (json.dumps({**DOC, "images": {"Web!": WEB}}), "service name 'Web!' is not valid"),
    (json.dumps({**DOC, "by": 3}), "'by' must be a string"),
    (json.dumps({**DOC, "extra": 1}), "unknown field"),
    ("{" * 5000, "not valid JSON"),
    ("x" * 9000, "larger than a manifest"),
])
def test_bad_manifests_are_refused_with_the_reason(text, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        Release.from_json(text, where="/dockyard/prod/release")
