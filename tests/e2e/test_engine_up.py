"""`AutomationDeployer.up` on the real engine: one CLI run per update, its outputs and changes read from the
update's own event log, the stack created when it does not exist yet, and the program run inside this
process when the engine would run it with this interpreter (dockyard.release.program_host).

Every `pulumi` the deployer starts goes through a wrapper on PATH that records its arguments, so the
tests count the engine runs a promote or a rollback pays for.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dockyard.release.engine import AutomationDeployer
from tests.support.engine_project import EngineProject

PROGRAM = '''
import os
from pathlib import Path

import pulumi

Path("ran-in").write_text(str(os.getpid()))  # relative: the program runs from its own directory
print("a line the program prints")
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
    message = str(failed.value)
    assert message.startswith("pulumi failed for stack dev") and "\n" not in message, message
    assert message.endswith("the program refuses: replicas must be set"), message


def test_the_program_runs_in_this_process_from_its_directory_and_its_prints_stay_out_of_stdout(project, capsys):
    directory, _ = project
    lines: list[str] = []
    engine_log = directory / "engine.log"
    AutomationDeployer(directory, log=lines.append, engine_log=engine_log).up("dev")
    assert (directory / "ran-in").read_text() == str(os.getpid())
    assert "a line the program prints" not in capsys.readouterr().out
    assert "a line the program prints" in engine_log.read_text()


@pytest.mark.parametrize("why", ["opt-out", "another interpreter"])
def test_otherwise_the_engines_own_language_host_runs_it(project, monkeypatch, why):
    directory, _ = project
    if why == "opt-out":
        monkeypatch.setenv("DOCKYARD_PROGRAM_HOST", "engine")
    else:  # a virtualenv of the project's own: the engine's host must start that one
        monkeypatch.delenv("PULUMI_PYTHON_CMD")
        pulumi_yaml = yaml.safe_load((directory / "Pulumi.yaml").read_text())
        pulumi_yaml["runtime"] = {"name": "python", "options": {"virtualenv": "venv"}}
        (directory / "Pulumi.yaml").write_text(yaml.safe_dump(pulumi_yaml))
        venv = directory / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                       check=True, timeout=120)
        (venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" /
         "dockyard-outer.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")) + "\n")
        monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = AutomationDeployer(directory, log=lambda line: None).up("dev")
    assert result.outputs["plain"]["replicas"] == 1
    assert (directory / "ran-in").read_text() != str(os.getpid())


def test_the_projects_own_modules_run_again_on_every_update_in_one_process(project):
    """A program whose own module registers at import time: a second `up` in the same command (an automatic
    rollback) must register it again, or the engine would delete what it made."""
    directory, _ = project
    (directory / "extra.py").write_text("import pulumi\npulumi.export('extra', 'registered')\n")
    (directory / "__main__.py").write_text("import extra  # noqa: F401\n" + PROGRAM)
    deployer = AutomationDeployer(directory, log=lambda line: None)
    assert deployer.up("dev").outputs["extra"] == "registered"
    assert deployer.up("dev").outputs.get("extra") == "registered"
    assert (directory / "ran-in").read_text() == str(os.getpid())
