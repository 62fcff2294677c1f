"""`dockyard demo` (what ./scripts/demo runs) walks the story to the end on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import PROJECT_DIR, rendered_deployments

pytestmark = pytest.mark.e2e


def test_demo_runs_the_whole_story(tmp_path):
    if os.environ.get("DOCKYARD_SKIP_E2E") == "1":
        pytest.skip("DOCKYARD_SKIP_E2E=1")
    workdir = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "infra.release.cli", "demo", "--json", "--dir", str(workdir)],
                          capture_output=True, text=True, cwd=PROJECT_DIR, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert len(result["steps"]) == 11
    assert "images are recorded, not built" in proc.stderr
    assert result["rendered"] == [str(workdir / "rendered" / "dev"), str(workdir / "rendered" / "prod")]
    prod = rendered_deployments(workdir / "rendered" / "prod")
    dev = rendered_deployments(workdir / "rendered" / "dev")
    assert prod["web"] != dev["web"]  # prod was rolled back to release 1; dev runs release 2
    history = sorted((workdir / "releases" / "prod" / "versions").glob("*.json"))
    assert len(history) == 3 and json.loads(history[-1].read_text())["source"] == "rollback:v1"
