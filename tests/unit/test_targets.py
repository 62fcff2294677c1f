"""Every orchestrator implements the one Target interface, and only the mapping asks which one a stack uses."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from dockyard import targets
from dockyard.errors import ConfigError

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.mark.parametrize("name", targets.NAMES)
def test_each_target_implements_the_interface(name: str) -> None:
    target = targets.for_name(name)
    assert isinstance(target, targets.Target)
    assert target.name == name
    # What every target must do itself: run its program and prove what runs after `up`.
    for method in ("program", "verify"):
        assert getattr(type(target), method) is not getattr(targets.Target, method), f"{name} lacks {method}"
    # The module the command imports ahead of the engine's `up` is the one its program runs.
    assert callable(getattr(importlib.import_module(target.program_module), "deploy", None)), target.program_module


def test_an_unknown_target_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"dockyard:target: got 'cloudrun'; expected one of ecs, kubernetes, nomad"):
        targets.for_name("cloudrun")


def test_no_code_outside_the_mapping_asks_which_target_a_stack_uses() -> None:
    asks = re.compile(r"\.target\s*(==|!=|\bin\b|\bnot in\b)|\btarget\s*(==|!=)\s*['\"]")
    mapping = INFRA / "targets" / "__init__.py"
    found = [f"{path.relative_to(INFRA)}:{number}: {line.strip()}"
             for path in sorted(INFRA.rglob("*.py")) if path != mapping
             for number, line in enumerate(path.read_text().splitlines(), 1) if asks.search(line)]
    assert found == []


def test_no_module_of_infra_is_over_400_lines() -> None:
    long = {str(p.relative_to(INFRA)): n for p in INFRA.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_readme_layout_names_every_module_of_infra() -> None:
    readme = (INFRA.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Adding a target")]
    modules = sorted({p.name for p in INFRA.rglob("*.py") if p.name != "__init__.py"})
    assert [m for m in modules if m not in layout] == []
    folders = sorted({p.parent.name + "/" for p in INFRA.rglob("__init__.py") if p.parent != INFRA})
    assert [f for f in folders if f not in layout] == []
