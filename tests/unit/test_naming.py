"""Names within every limit, deterministic, and distinct when truncated."""

from __future__ import annotations

import re

import pytest

from dockyard import naming
from dockyard.errors import BadInput


@pytest.mark.parametrize("branch, slug", [
    ("main", "main"),
    ("fix-login", "fix-login"),
    ("release-2026-11", "release-2026-11"),
])
def test_plain_branch_names_keep_their_slug(branch, slug):
    assert naming.branch_slug(branch) == slug
    assert naming.branch_stack(branch) == f"branch-{slug}"


def test_lossy_branch_names_get_a_hash_and_stay_distinct():
    names = ["feature/login", "feature-login", "Feature/Login", "feature_login", "feature//login"]
    slugs = [naming.branch_slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    for slug in slugs:
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", slug)
        assert slug.startswith("feature-login")


def test_long_branch_names_are_cut_at_the_limit_and_stay_distinct():
    base = "feature/" + "x" * 200
    a, b = naming.branch_slug(base + "a"), naming.branch_slug(base + "b")
    assert a != b
    assert len(a) == len(b) == naming.BRANCH_SLUG_MAX
    assert naming.branch_slug(base + "a") == a  # deterministic


@pytest.mark.parametrize("branch", ["", "   ", "///", "üï"])
def test_branch_without_usable_characters_is_refused(branch):
    with pytest.raises(BadInput):
        naming.branch_slug(branch)


def test_is_branch_stack():
    assert naming.is_branch_stack(naming.branch_stack("feature/login"))
    assert not naming.is_branch_stack("prod")
    assert not naming.is_branch_stack("branch-")
    assert not naming.is_branch_stack("branch-Upper")


LONG_STACK = naming.branch_stack("feature/" + "y" * 300)


@pytest.mark.parametrize("make, limit, pattern", [
    (lambda s: naming.load_balancer(s), 32, r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"),
    (lambda s: naming.target_group(s, "web", 8080), 32, r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"),
    (lambda s: naming.iam_role(s, "worker", "execution"), 64, r"[\w+=,.@-]+"),
    (lambda s: naming.db_identifier(s), 63, r"[a-z](?!.*--)[a-z0-9-]*[a-z0-9]"),
    (lambda s: naming.kubernetes_namespace("dockyard-apps-" + "n" * 40, naming.branch_slug(s)), 63,
     r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"),
    (lambda s: naming.log_group(s, "web"), 512, r"[\w./-]+"),
    (lambda s: naming.cluster(s), 255, r"[A-Za-z0-9-]+"),
])
def test_resource_names_fit_their_limits_and_differ_per_stack(make, limit, pattern):
    other = naming.branch_stack("feature/" + "y" * 299 + "z")
    for stack in ("prod", LONG_STACK, other):
        name = make(stack)
        assert len(name) <= limit, name
        assert re.fullmatch(pattern, name), name
    assert make(LONG_STACK) != make(other)
    assert make(LONG_STACK) == make(LONG_STACK)


def test_target_group_name_changes_with_port_so_replacement_never_collides():
    assert naming.target_group("prod", "web", 8080) != naming.target_group("prod", "web", 8081)


def test_fit_keeps_short_names_and_hashes_long_ones():
    assert naming.fit("short", 10) == "short"
    cut = naming.fit("a" * 40, 20)
    assert len(cut) == 20 and cut != naming.fit("a" * 39 + "b", 20)


@pytest.mark.parametrize("name", ["/dockyard/prod/release", "/a", "/x/" + "y" * 1000])
def test_valid_parameter_names(name):
    assert naming.validate_parameter_name(name) == name


@pytest.mark.parametrize("name", ["dockyard/prod", "/aws/x", "/ssm/x", "/a//b", "/a/", "/a b",
                                  "/" + "/x" * 16, "/" + "x" * 1011])
def test_invalid_parameter_names(name):
    with pytest.raises(BadInput, match="SSM parameter name"):
        naming.validate_parameter_name(name)


def test_listener_priority_depends_on_the_service_name_alone_and_leaves_room_for_the_default_route():
    priorities = {naming.listener_priority(f"svc-{i}") for i in range(500)}
    assert min(priorities) >= 1 and max(priorities) < naming.DEFAULT_ROUTE_PRIORITY == 50000
    assert naming.listener_priority("api") == naming.listener_priority("api")


@pytest.mark.parametrize("name", ["web", "api-v2", "a" * 32])
def test_valid_service_names(name):
    assert naming.validate_service_name(name) == name


@pytest.mark.parametrize("name", ["Web", "2web", "web-", "web_api", "a" * 33, ""])
def test_invalid_service_names(name):
    with pytest.raises(BadInput):
        naming.validate_service_name(name)
