"""Software nobody here wrote, built for real and pushed to the loopback registry: nginx and redis-server
from Debian's packages (tests/fixtures/theirs/), and a public sample application's own Dockerfile with only
its FROM line changed, fetched at test time from its repository.

Each image carries its commit as the `org.opencontainers.image.revision` label (the fixtures' Dockerfiles
set it from COMMIT_SHA; the sample's is added with `docker build --label`, its Dockerfile untouched but for
FROM), so `dockyard status` can show it. Builds use the host's network: Debian's package mirror must be
reachable from the build, and the private engine has no NAT for its bridge.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "theirs"
# A tiny public sample: a Python standard-library web server with a one-line Dockerfile of its own
# (FROM python:3, no USER: it would run as root). Pinned to the commit the tests were written against.
SAMPLE_REPOSITORY = os.environ.get("DOCKYARD_SAMPLE_APP_GIT", "https://github.com/atoonk/stackpath-anycast-terraform")
SAMPLE_COMMIT = "fddd132de50e10bb8fa11bb4542efdf7431655c7"
SAMPLE_CONTEXT = "container"
_FROM = re.compile(r"^FROM\s+\S+.*$", re.MULTILINE)


@dataclass(frozen=True)
class Theirs:
    refs: dict[str, str]  # service -> pinned reference
    commits: dict[str, str]  # service -> the commit its image's revision label carries


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args[:3])} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def sample_context(workdir: Path) -> Path:
    """The sample's build context at its pinned commit, its Dockerfile's FROM line pointed at `base` later."""
    checkout = workdir / "sample"
    if not checkout.is_dir():
        clone = subprocess.run(["git", "clone", "--quiet", "--no-checkout", SAMPLE_REPOSITORY, str(checkout)],
                               capture_output=True, text=True, timeout=300)
        if clone.returncode != 0:
            pytest.skip(f"the sample application cannot be fetched from {SAMPLE_REPOSITORY} "
                        f"({clone.stderr.strip()[-200:]}); set DOCKYARD_SAMPLE_APP_GIT to a copy of it")
        subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", SAMPLE_COMMIT], check=True,
                       capture_output=True, timeout=60)
    return checkout / SAMPLE_CONTEXT


def with_base(dockerfile: Path, base: str) -> None:
    """Point the Dockerfile's one FROM line at `base`; every other line stays as its authors wrote it."""
    text = dockerfile.read_text()
    assert len(_FROM.findall(text)) == 1, f"{dockerfile} has more than one FROM line"
    changed = _FROM.sub(f"FROM {base}", text)
    before, after = text.splitlines(), changed.splitlines()
    assert len(before) == len(after) and sum(a != b for a, b in zip(before, after)) == 1
    dockerfile.write_text(changed)


def fixture_commit(name: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--", f"tests/fixtures/theirs/{name}"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    return out or "unknown"


def _tools(env: dict[str, str]) -> tuple[str, str, str]:
    docker = shutil.which("docker", path=env.get("PATH"))
    base, registry = env.get("DOCKYARD_PYTHON_IMAGE"), env.get("DOCKYARD_REGISTRY")
    if not docker or not registry or not base:
        pytest.skip("no container engine, registry or Debian base image (DOCKYARD_PYTHON_IMAGE); "
                    "./scripts/engine up provides them")
    return docker, base, registry


def _build_one(env: dict[str, str], repository: str, name: str, context: Path, commit: str,
               extra: list[str]) -> str:
    docker, base, registry = _tools(env)
    tag = f"{registry}/{repository}/{name}:{secrets.token_hex(4)}"
    _run([docker, "build", "--network", "host", "-q", "-t", tag, "--build-arg", f"BASE_IMAGE={base}",
          "--build-arg", f"COMMIT_SHA={commit}", *extra, str(context)], env)
    pushed = _run([docker, "push", tag], env, timeout=300)
    digest = next(w for w in pushed.split() if w.startswith("sha256:"))
    return f"{registry}/{repository}/{name}@{digest}"


def build_servers(env: dict[str, str], repository: str) -> Theirs:
    """nginx and redis-server from Debian's packages (services `nginx`, `redis`)."""
    refs, commits = {}, {}
    for name in ("nginx", "redis"):
        commits[name] = fixture_commit(name)
        refs[name] = _build_one(env, repository, name, FIXTURES / name, commits[name], [])
    return Theirs(refs=refs, commits=commits)


def build_sample(workdir: Path, env: dict[str, str], repository: str) -> Theirs:
    """The public sample (service `hello`), its Dockerfile's FROM line pointed at the set-up's base; skips
    with one line when its repository cannot be fetched."""
    _, base, _ = _tools(env)
    context = sample_context(workdir)
    with_base(context / "Dockerfile", base)
    ref = _build_one(env, repository, "hello", context, SAMPLE_COMMIT,
                     ["--label", f"org.opencontainers.image.revision={SAMPLE_COMMIT}"])
    return Theirs(refs={"hello": ref}, commits={"hello": SAMPLE_COMMIT})


# Small servers: on Kubernetes they ask for what they use, not a Fargate size (ECS and Nomad ignore it).
SMALL = {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
# How each runs, through documented keys only (README: Configuration reference, per service).
SERVICES = {
    # Debian's nginx as www-data: the image names its user, so the number is set here; its pid file and
    # temporary files live in writable paths; Debian's default site at / is its health check.
    "nginx": {"port": 8080, "healthCheckPath": "/", "desiredCount": 1, "runAsUser": 33, "runAsGroup": 33,
              "writablePaths": {"/run/nginx": "1Mi", "/var/cache/nginx": "16Mi"}, "kubernetesResources": SMALL},
    # redis-server as its image's own uid (999), its data directory writable, checked over TCP, run in the
    # foreground with its logs on the container's output.
    "redis": {"port": 6379, "host": "redis.theirs.test", "desiredCount": 1, "healthCheckType": "tcp",
              "writablePaths": {"/var/lib/redis/data": "64Mi"}, "command": ["redis-server"],
              "args": ["/etc/redis/redis.conf", "--daemonize", "no", "--supervised", "no", "--bind", "0.0.0.0",
                       "--protected-mode", "no", "--logfile", "", "--pidfile", "", "--dir", "/var/lib/redis/data"],
              "kubernetesResources": SMALL},
    # The sample as its authors wrote it: it would run as root, so it runs only once a uid is set (nobody).
    "hello": {"port": 8000, "path": "/hello", "healthCheckPath": "/", "desiredCount": 1, "kubernetesResources": SMALL},
}
SAMPLE_USER = 65534
