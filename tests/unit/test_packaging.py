"""The folder infra/ is installed as the package `dockyard`: every subpackage listed, imported from here."""

from __future__ import annotations

import tomllib
from pathlib import Path

import dockyard

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_of_the_folder_is_listed_under_the_dockyard_name() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"dockyard": "infra"}
    folders = ["dockyard", *(".".join(("dockyard", *p.parent.relative_to(ROOT / "infra").parts))
                             for p in sorted((ROOT / "infra").rglob("__init__.py"))
                             if p.parent != ROOT / "infra" and "__pycache__" not in p.parts)]
    assert sorted(setuptools["packages"]) == sorted(folders)


def test_the_tests_import_dockyard_from_this_checkout() -> None:
    assert Path(dockyard.__file__).resolve().parent == ROOT / "infra"


def test_no_module_is_imported_by_its_folder_name() -> None:
    import re

    stale = re.compile(r"^\s*(from\s+infra[.\s]|import\s+infra\b)|[\"']infra\.[a-z_]+\.", re.MULTILINE)
    found = [str(p.relative_to(ROOT)) for folder in ("infra", "tests", "policy", "benchmarks")
             for p in (ROOT / folder).rglob("*.py") if stale.search(p.read_text())]
    assert found == []
