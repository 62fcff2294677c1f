"""The GitHub Actions workflows users copy: OIDC, pinned actions, protected promotion, one PR comment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def test_there_are_the_four_workflows():
    assert {p.stem for p in WORKFLOWS} == {"build", "preview", "promote", "gc"}


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_third_party_actions_are_pinned_to_a_commit(path):
    for ref in uses(load(path)):
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_aws_access_is_through_oidc_only(path):
    text = path.read_text()
    assert load(path)["permissions"]["id-token"] == "write"
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "PULUMI_ACCESS_TOKEN: ${{ secrets." in text or "PULUMI_CONFIG_PASSPHRASE: ${{ secrets." in text


def test_setup_action_assumes_a_role():
    (action,) = ACTIONS
    steps = load(action)["runs"]["steps"]
    aws = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert aws and aws[0]["with"]["role-to-assume"] == "${{ inputs.role-to-assume }}"


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
    return candidate if candidate and Path(candidate).exists() else None


@pytest.mark.skipif(actionlint() is None, reason="actionlint is not installed (scripts/setup builds it when Go is present)")
def test_actionlint_passes():
    result = subprocess.run([actionlint(), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
