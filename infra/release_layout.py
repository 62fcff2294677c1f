"""Where the file release store keeps things: numbered versions and a small index.

    <releaseDir>/versions/000007.json   one release manifest per version, never rewritten
    <releaseDir>/index.json             labels (deployed, known-good) and the rollback hold

Shared by the app program (which reads the newest version) and the `dockyard`
command (which writes them), so both agree on one layout.
"""

from __future__ import annotations

import re

VERSIONS_DIR = "versions"
INDEX_FILE = "index.json"
_VERSION_FILE = re.compile(r"^(\d{6,})\.json$")


def version_filename(version: int) -> str:
    return f"{version:06d}.json"


def parse_version_filename(name: str) -> int | None:
    match = _VERSION_FILE.match(name)
    return int(match.group(1)) if match else None
