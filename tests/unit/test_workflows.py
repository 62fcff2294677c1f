"""The GitHub Actions workflows users copy: OIDC, pinned actions, protected promotion, one PR comment."""

from __future__ import annotations

import os
import re
import shutil
import sys
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import parts

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def uses(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses":
                found.append(value)
            found.extend(uses(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(uses(item))
    return found


def test_there_are_the_five_workflows():
    assert {p.stem for p in WORKFLOWS} == {"build", "preview", "promote", "gc", "auto-promote"}


def test_auto_promotion_is_scheduled_soak_gated_and_reads_full_history():
    workflow = load(ROOT / ".github/workflows/auto-promote.yml")
    assert workflow[True]["schedule"]  # YAML reads the key `on` as True
    job = workflow["jobs"]["promote"]
    scripts = "\n".join(s.get("run", "") for s in steps_of(job))
    assert '--auto' in scripts and "--override-window" not in scripts and "--release-hold" not in scripts
    checkout = next(s for s in steps_of(job) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    # never alongside a manual promotion of the same environment
    assert job["concurrency"]["group"] == "promote-${{ matrix.env }}"
    manual = load(ROOT / ".github/workflows/promote.yml")["concurrency"]["group"]
    assert manual == "promote-${{ inputs.env }}"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_third_party_actions_are_pinned_to_a_commit(path):
    for ref in uses(load(path)):
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref


def steps_of(job: dict) -> list[dict]:
    return job.get("steps") or []


def assumes_aws(job: dict) -> bool:
    """A job that reaches AWS: through the setup action or the credentials action itself."""
    return any("setup-dockyard" in s.get("uses", "") or "configure-aws-credentials" in s.get("uses", "")
               for s in steps_of(job))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_aws_access_is_through_oidc_only(path):
    text = path.read_text()
    jobs = load(path)["jobs"]
    assert any(assumes_aws(job) for job in jobs.values())
    for name, job in jobs.items():
        if assumes_aws(job):
            assert job["permissions"]["id-token"] == "write", name
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "PULUMI_ACCESS_TOKEN: ${{ secrets." in text or "PULUMI_CONFIG_PASSPHRASE: ${{ secrets." in text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_granted_per_job_and_least(path):
    workflow = load(path)
    assert workflow["permissions"] == {}, "the workflow level grants nothing; each job asks for what it uses"
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions")
        assert isinstance(granted, dict), f"{name}: no job-level permissions"
        writes = {scope for scope, level in granted.items() if level == "write"}
        allowed = set()
        if assumes_aws(job):
            allowed.add("id-token")
        if any("github-script" in s.get("uses", "") for s in steps_of(job)):
            allowed.add("pull-requests")
        assert writes <= allowed, f"{name}: write access to {sorted(writes - allowed)} it does not use"
        # the token that can write to the pull request never sits next to cloud credentials
        assert not {"id-token", "pull-requests"} <= writes, name


def test_setup_action_assumes_a_role():
    (action,) = ACTIONS
    steps = load(action)["runs"]["steps"]
    aws = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert aws and aws[0]["with"]["role-to-assume"] == "${{ inputs.role-to-assume }}"


def test_pulumi_cli_is_installed_from_a_pinned_release_not_a_piped_script():
    (action,) = ACTIONS
    steps = load(action)["runs"]["steps"]
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert not re.search(r"(curl|wget)[^\n|]*\|\s*(ba)?sh", scripts), "no script from the network into a shell"
    pulumi = [s for s in steps if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi and pulumi[0]["with"]["pulumi-version"] == "${{ inputs.pulumi-version }}"
    assert "command" not in pulumi[0]["with"], "the action only installs the CLI; dockyard drives it"


def test_preview_deploys_the_images_the_pull_request_built():
    jobs = load(ROOT / ".github/workflows/preview.yml")["jobs"]
    scripts = "\n".join(s.get("run", "") for job in jobs.values() for s in steps_of(job))
    assert "dockyard build --push-only --against dev --json > images.json" in scripts
    assert ".changed[]" in scripts and 'args+=(--image "$image")' in scripts
    assert 'dockyard "${args[@]}"' in scripts
    deploy = next(job for job in jobs.values() if "images.json" in str(job))
    used = [s.get("uses", "") for s in steps_of(deploy)]
    # logged in to the registry before anything is pushed
    login = next(i for i, u in enumerate(used) if u.startswith("aws-actions/amazon-ecr-login@"))
    push = next(i for i, s in enumerate(steps_of(deploy)) if "--push-only" in s.get("run", ""))
    assert login < push


def test_promotion_runs_in_a_protected_environment():
    job = load(ROOT / ".github/workflows/promote.yml")["jobs"]["promote"]
    assert job["environment"] == "${{ inputs.env }}"


def test_preview_comment_is_found_by_its_marker_and_edited():
    text = (ROOT / ".github/workflows/preview.yml").read_text()
    assert "dockyard-preview:" in text and "updateComment" in text and "createComment" in text
    on = load(ROOT / ".github/workflows/preview.yml")[True]  # YAML reads the key `on` as True
    assert "closed" in on["pull_request"]["types"]


def test_untrusted_branch_names_are_passed_as_data():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if line.strip().startswith("run:") or line.startswith("          "):
                assert "${{ github.head_ref }}" not in line or line.strip().startswith("BRANCH:"), line


def actionlint() -> str | None:
    candidate = os.environ.get("DOCKYARD_ACTIONLINT") or shutil.which("actionlint")
    if not candidate:  # where scripts/setup builds it
        built = sorted((Path(os.environ.get("DOCKYARD_TOOLS") or parts.status_dir().parent / "tools")).glob(
            "actionlint-*/actionlint"))
        candidate = str(built[-1]) if built else None
    return candidate if candidate and Path(candidate).exists() else None


def test_actionlint_passes():
    if actionlint() is None:
        parts.missing("actionlint", "actionlint is not installed (scripts/setup builds it when Go is present)")
    result = subprocess.run([actionlint(), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor() -> str | None:
    candidate = Path(sys.executable).with_name("zizmor")
    return str(candidate) if candidate.exists() else shutil.which("zizmor")


def run_zizmor(*inputs: Path) -> subprocess.CompletedProcess:
    # --offline: no GitHub API calls (and no token); high severity is the bar the workflows keep
    return subprocess.run([zizmor(), "--offline", "--no-progress", "--min-severity", "high", "--color", "never",
                           *map(str, inputs)], capture_output=True, text=True, cwd=ROOT, timeout=120)


needs_zizmor = pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed (pip install -e '.[test]')")


@needs_zizmor
def test_zizmor_finds_nothing_high_in_the_workflows_and_actions():
    result = run_zizmor(ROOT / ".github")
    assert result.returncode == 0, result.stdout + result.stderr


BAD_WORKFLOW = """\
name: bad
on:
  pull_request:
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


@needs_zizmor
def test_zizmor_flags_a_pull_request_title_spliced_into_a_script(tmp_path):
    """Proves the wiring: the same call fails on a known high finding (template injection)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    result = run_zizmor(tmp_path / ".github")
    assert result.returncode != 0 and "template-injection" in result.stdout + result.stderr, result.stdout
