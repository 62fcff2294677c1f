"""`AutomationDeployer.up` on the real engine: one CLI run per update, its outputs and changes read from the
update's own event log, and the stack created when it does not exist yet.

Every `pulumi` the deployer starts goes through a wrapper on PATH that records its arguments, so the
tests count the engine runs a promote or a rollback pays for.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from dockyard.release.engine import AutomationDeployer
from tests.support.engine_project import EngineProject

PROGRAM = '''
import pulumi

config = pulumi.Config()
pulumi.export("plain", {"name": "web", "replicas": config.get_int("replicas") or 1})
if config.get_bool("withSecret"):
    pulumi.export("token", pulumi.Output.secret("s3cret"))
'''


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A project with its own tiny program; `pulumi` on PATH records each run in calls.log."""
    engine = EngineProject(tmp_path, user="engine-up")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    pulumi_yaml = yaml.safe_load((tmp_path / "Pulumi.yaml").read_text())
    pulumi_yaml.pop("main")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({**pulumi_yaml, "name": "engine-up"}))
    calls = tmp_path / "calls.log"
    wrapper_dir = tmp_path / "wrapper"
    wrapper_dir.mkdir()
    real = next(Path(d) / "pulumi" for d in engine.env["PATH"].split(os.pathsep) if (Path(d) / "pulumi").is_file())
    wrapper = wrapper_dir / "pulumi"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    for key, value in engine.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", f"{wrapper_dir}{os.pathsep}{engine.env['PATH']}")
    return tmp_path, calls


def runs(calls: Path) -> list[str]:
    found = calls.read_text().splitlines() if calls.exists() else []
    calls.write_text("")
    return found


def test_an_update_is_one_engine_run_and_its_outputs_and_changes_come_from_its_event_log(project):
    directory, calls = project
    deployer = AutomationDeployer(directory, log=lambda line: None)
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"engine-up:replicas": "2"}}))

    first = deployer.up("dev")  # no such stack yet: created, then updated
    assert first.outputs == {"plain": {"name": "web", "replicas": 2}}
    assert first.changes == {"create": 1}
    made = runs(calls)
    assert made[0].startswith("up ") and made[-1].startswith("up "), made
    assert not [c for c in made if "stack output" in c or "stack history" in c], made

    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"engine-up:replicas": "3"}}))
    second = deployer.up("dev")
    assert second.outputs == {"plain": {"name": "web", "replicas": 3}}
    assert second.changes == {"same": 1}
    again = runs(calls)
    assert len(again) == 1 and again[0].startswith("up --yes --skip-preview"), again


def test_a_secret_output_is_read_in_the_clear_from_the_stack_once_more(project):
    directory, calls = project
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"engine-up:withSecret": "true"}}))
    result = AutomationDeployer(directory, log=lambda line: None).up("dev")
    assert result.outputs == {"plain": {"name": "web", "replicas": 1}, "token": "s3cret"}
    assert any("stack output" in c for c in runs(calls))


def test_a_failing_program_is_the_engines_error_in_one_line(project):
    directory, _ = project
    (directory / "__main__.py").write_text("raise SystemExit('the program refuses: replicas must be set')\n")
    from dockyard.errors import DockyardError

    with pytest.raises(DockyardError) as failed:
        AutomationDeployer(directory, log=lambda line: None).up("dev")
    assert "pulumi failed for stack dev" in str(failed.value)
