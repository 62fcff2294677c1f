"""The dockyard policy pack: `pulumi preview --policy-pack policy`."""

import sys
from pathlib import Path

# The pack runs from its own directory; the rules import the project's pure modules.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack  # noqa: E402

from policy.pack import policies  # noqa: E402

PolicyPack(name="dockyard", policies=policies())
