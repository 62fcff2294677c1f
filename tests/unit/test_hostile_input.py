"""Hostile input: arbitrary strings, huge inputs, wrong types, unicode and valid-but-wrong JSON reach the
parsers and the config loader; nothing but the project's typed errors ever comes out."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from dockyard import config
from dockyard.errors import BadInput, ConfigError, ImageRefError, ManifestError
from dockyard.images import ImageRef
from dockyard.manifest import Release

CASES: Counter[str] = Counter()
PROFILE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
reference_like = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"[a-zA-Z0-9.:/_@-]{0,120}", fullmatch=True),
    st.builds(lambda a, b, c: f"{a}/{b}@sha256:{c}", st.text(max_size=30), st.text(max_size=30),
              st.text(alphabet="0123456789abcdefABCDEF", max_size=70)),
    st.just("a/" * 5000 + "b"),
)


@PROFILE
@given(reference_like)
def test_image_parser_only_raises_its_own_error(text):
    CASES["image references"] += 1
    try:
        ref = ImageRef.parse(text)
    except ImageRefError:
        return
    assert str(ref) == text  # whatever parses, round-trips exactly


@PROFILE
@given(st.one_of(st.text(max_size=500), json_values.map(json.dumps), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1"))))
def test_manifest_parser_only_raises_its_own_error(text):
    CASES["manifests (text)"] += 1
    try:
        Release.from_json(text)
    except ManifestError:
        pass


@PROFILE
@given(st.fixed_dictionaries({"schema": st.sampled_from([1, "1", 1.0, True, None]),
                              "images": json_values}, optional={"source": json_values, "by": json_values}))
def test_manifest_valid_json_wrong_shape_is_refused_cleanly(data):
    CASES["manifests (wrong shape)"] += 1
    try:
        release = Release.from_dict(data)
    except ManifestError:
        return
    assert all(ref.pinned for ref in release.images.values())


config_keys = st.sampled_from([*config.COMMON_KEYS, *config.REGISTRY_KEYS, *config.APP_KEYS, "bogus", "SERVICES"])


@PROFILE
@given(st.sampled_from(["registry", "app", "APP", "", "x" * 500]),
       st.dictionaries(config_keys, st.one_of(json_values.map(json.dumps), st.text(max_size=60)), max_size=6))
def test_config_loader_only_raises_config_errors(role, values):
    CASES["config documents"] += 1
    raw = {"dockyard:role": role, **{f"dockyard:{k}": v for k, v in values.items()}}
    try:
        config.load(raw, stack="prod", discovered_services=["web"])
    except ConfigError:
        pass


@PROFILE
@given(st.dictionaries(st.sampled_from(["web", "Web", "a" * 40, "ok-svc", "1x"]),
                       st.dictionaries(st.sampled_from([*config.SERVICE_KEYS, "nope"]), json_values, max_size=5),
                       max_size=3))
def test_service_settings_only_raise_config_errors(services):
    CASES["service settings"] += 1
    try:
        config.load({"dockyard:role": "app", "dockyard:services": json.dumps(services)}, stack="dev")
    except ConfigError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80).filter(lambda t: "\x00" not in t))
def test_cli_turns_bad_image_overrides_into_exit_2_with_one_line(text):
    from dockyard.release.commands.branches import parse_overrides

    CASES["CLI --image values"] += 1
    try:
        parse_overrides([f"web={text}"])
    except BadInput as err:
        assert "\n" not in err.message


def test_cli_reports_a_corrupt_release_store_as_exit_2(tmp_path, monkeypatch):
    from dockyard.release import cli
    from dockyard.release.context import Context
    from dockyard.release.project import Project

    (tmp_path / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (tmp_path / "Pulumi.prod.yaml").write_text(
        'config:\n  dockyard:role: app\n  dockyard:imageSource: file\n  dockyard:services: {web: {port: 80}}\n')
    versions = tmp_path / ".dockyard" / "releases" / "prod" / "versions"
    versions.mkdir(parents=True)
    (versions / "000001.json").write_text('{"schema": 1, "images": {"web": "\u202eweb:latest"}}')
    monkeypatch.setattr(cli, "make_context", lambda _: Context(project=Project(tmp_path),
                                                                deployer_factory=lambda: None))
    result = CliRunner().invoke(cli.app, ["status", "prod", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "bad-input"
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    CASES["corrupt stores"] += 1


def test_report_how_many_cases_ran(capsys):
    with capsys.disabled():
        print("\n  hostile input cases: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))
    assert sum(CASES.values()) > 0 or pytest.skip("run with the whole module to count")
