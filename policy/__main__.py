"""The dockyard policy pack: `pulumi preview --policy-pack policy`."""

import sys
from pathlib import Path

# The pack runs from its own directory; the rules import the project's pure modules.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import dockyard  # noqa: F401 - installed (pip install -e .) in the interpreter that runs the pack
except ImportError:
    # Not installed there: this checkout's infra/ folder is the package dockyard.
    import importlib.util

    _spec = importlib.util.spec_from_file_location("dockyard", ROOT / "infra" / "__init__.py",
                                                   submodule_search_locations=[str(ROOT / "infra")])
    sys.modules["dockyard"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["dockyard"])

from pulumi_policy import PolicyPack  # noqa: E402

from policy.pack import policies  # noqa: E402

PolicyPack(name="dockyard", policies=policies())
