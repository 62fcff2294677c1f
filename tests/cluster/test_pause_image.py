"""The pod sandbox (pause) image is the first thing a cold `scripts/cluster up` puts in the engine's registry.
It must get there from a caller whose shell names no engine (a new user's, scripts/setup's): the script talks to
the engine `scripts/engine env` names, never to docker's default socket."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import parts

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def engine_env() -> dict[str, str]:
    proc = subprocess.run([str(ROOT / "scripts" / "engine"), "env"], capture_output=True, text=True, timeout=30)
    found = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            found[key] = value
    if proc.returncode != 0 or not found.get("DOCKER_HOST") or not found.get("DOCKYARD_REGISTRY"):
        parts.missing("engine", f"no container engine: scripts/engine env says {proc.stderr.strip() or 'nothing'}")
    return found


def registry_get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), b""


def test_the_pause_image_reaches_the_registry_when_the_caller_names_no_engine():
    bin_dir = subprocess.run([str(ROOT / "scripts" / "build-cluster"), "--print-path"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if not (Path(bin_dir) / "pause").is_file():
        parts.missing("cluster", f"no pause binary in {bin_dir}: scripts/build-cluster builds it")
    engine = engine_env()
    registry = engine["DOCKYARD_REGISTRY"]
    repository = f"dockyard-test/pause-{secrets.token_hex(4)}"  # empty: the cold path, whatever the cluster holds
    caller = {k: v for k, v in os.environ.items()
              if k not in ("DOCKER_HOST", "DOCKYARD_REGISTRY", "DOCKER_CONTEXT", "DOCKER_CONFIG")}
    caller["DOCKYARD_CLUSTER_PAUSE_REPO"] = repository
    proc = subprocess.run([str(ROOT / "scripts" / "cluster"), "pause"], env=caller, capture_output=True, text=True,
                          timeout=300)
    reference = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    digest = None
    try:
        assert proc.returncode == 0, proc.stderr
        assert reference.startswith(f"{registry}/{repository}:"), reference
        tag = reference.rsplit(":", 1)[1]
        code, headers, body = registry_get(f"http://{registry}/v2/{repository}/manifests/{tag}", MANIFEST)
        assert code == 200, f"the registry does not serve {reference} (HTTP {code})"
        digest = headers.get("Docker-Content-Digest")
        config_digest = json.loads(body)["config"]["digest"]
        code, _, blob = registry_get(f"http://{registry}/v2/{repository}/blobs/{config_digest}")
        config = json.loads(blob)["config"]
        assert (config["Entrypoint"], config["User"]) == (["/pause"], "65535:65535")
    finally:
        if digest:
            urllib.request.urlopen(urllib.request.Request(
                f"http://{registry}/v2/{repository}/manifests/{digest}", method="DELETE"), timeout=10).close()
        if reference:
            subprocess.run(["docker", "rmi", reference], env={**os.environ, **engine}, capture_output=True,
                           timeout=60)
