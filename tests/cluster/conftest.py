"""A real Kubernetes cluster for the tests: the one KUBECONFIG names (./scripts/test exports what
`./scripts/cluster env` prints), real images in the loopback registry, stacks deployed through the engine.

Where no cluster answers, every test here is skipped with one line saying why (under CI=true: failed,
unless this machine cannot run a cluster; see tests/support/parts.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.release.commands.demo_cluster import reset_namespaces
from dockyard.targets.kubernetes import verify as kube_verify
from tests.e2e.conftest import PROJECT_DIR, Workspace
from tests.support import parts
from tests.support.container_engine import base_image, require_engine

CLUSTER_DIR = Path(os.environ.get("DOCKYARD_CACHE", Path.home() / ".cache" / "dockyard")) / "cluster"
HEALTHY = 'self._json(200, {"status": "ok"})'


def require_cluster() -> Path:
    """The kubeconfig of a cluster that answers, or skip: one line naming why there is none."""
    why = None
    path = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if not path:
        why = "KUBECONFIG is not set"
    elif not Path(path).is_file():
        why = f"KUBECONFIG={path} does not exist"
    else:
        try:
            kube_verify.connect(str(Path(path).resolve()), timeout=5).get("/version")
        except Exception as err:  # noqa: BLE001 - any failure means: no cluster to test against
            why = f"KUBECONFIG={path} does not answer ({getattr(err, 'message', err)})"
    if why:
        parts.missing("cluster", f"no Kubernetes cluster: {why}; ./scripts/cluster up starts one")
    return Path(path)


def private_component(name: str, doing: str) -> int:
    """The running pid of one of the private cluster's components, or skip: only that cluster lets a test
    stop or pause a part of the control plane (`doing`, e.g. "stopped")."""
    path = CLUSTER_DIR / "run" / f"{name}.pid"
    if not path.is_file() or os.environ.get("KUBECONFIG") != str(CLUSTER_DIR / "admin.kubeconfig"):
        pytest.skip(f"the {name} can only be {doing} on the private cluster (./scripts/cluster up)")
    pid = int(path.read_text())
    os.kill(pid, 0)
    return pid


def kubectl(*args: str, timeout: float = 60) -> str:
    """A client dockyard does not control: the kubectl the cluster was built with (or one on PATH)."""
    binary = os.environ.get("DOCKYARD_KUBECTL") or shutil.which("kubectl")
    if not binary:
        parts.missing("cluster", "no kubectl: DOCKYARD_KUBECTL is not set and none is on PATH (./scripts/cluster env names it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, check=True).stdout


def pod_digests(namespace: str, service: str) -> dict[str, str]:
    """Every ready, not terminating pod of `service` -> the digest it runs, as kubectl reports it."""
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={service}", "-o",
                              "json"))["items"]
    found = {}
    for pod in pods:
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        if ready and not pod["metadata"].get("deletionTimestamp"):
            found[pod["metadata"]["name"]] = pod["status"]["containerStatuses"][0]["imageID"].rsplit("@", 1)[-1]
    return found


class Images:
    """web images built for real from images/web and pushed to the loopback registry, by variant."""

    def __init__(self, workdir: Path) -> None:
        self.docker = require_engine()
        self.registry = os.environ.get("DOCKYARD_REGISTRY")
        if not self.registry:
            parts.missing("engine", "no registry: DOCKYARD_REGISTRY is not set (./scripts/engine up starts one)")
        self.workdir = workdir
        self.built: dict[str, str] = {}

    def web(self, variant: str) -> str:
        """`ok`, `ok2` (another greeting) or `broken` (/healthz answers 503): its pinned reference."""
        if variant in self.built:
            return self.built[variant]
        context = self.workdir / variant
        shutil.copytree(PROJECT_DIR / "images" / "web", context, ignore=shutil.ignore_patterns("__pycache__"))
        app = context / "app.py"
        text = app.read_text()
        if variant == "broken":
            text = text.replace(HEALTHY, 'self._json(503, {"status": "broken on purpose"})', 1)
        elif variant != "ok":
            text = text.replace("hello from dockyard", f"hello from {variant}", 1)
        app.write_text(text)
        ref = f"{self.registry}/dockyard-cluster-test/web:{variant}"
        args = [self.docker, "build", "-q", "-t", ref]
        if base_image():
            args += ["--build-arg", f"PYTHON_IMAGE={base_image()}"]
        subprocess.run([*args, str(context)], check=True, capture_output=True, text=True, timeout=600)
        subprocess.run([self.docker, "push", ref], check=True, capture_output=True, text=True, timeout=300)
        digests = subprocess.run([self.docker, "image", "inspect", "--format",
                                  "{{range .RepoDigests}}{{println .}}{{end}}", ref], check=True,
                                 capture_output=True, text=True).stdout.split()
        digest = next(d.rsplit("@", 1)[1] for d in digests if d.startswith(f"{self.registry}/"))
        self.built[variant] = f"{self.registry}/dockyard-cluster-test/web@{digest}"
        return self.built[variant]


# Namespaces the cluster tests and the demo create (<name>-…): what a killed or earlier run left there holds
# CPU requests on a two-core node, and this run's pods would wait for room ("Insufficient cpu").
LEFTOVER_NAMES = ("dkt", "dkp", "team", "shop")


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    path = require_cluster()
    reset_namespaces(path, LEFTOVER_NAMES, log=lambda _: None)  # the demo's own clean-up, wider
    return path


@pytest.fixture(scope="session")
def images(kubeconfig, tmp_path_factory) -> Images:
    return Images(tmp_path_factory.mktemp("cluster-images"))


class ClusterWorkspace(Workspace):
    """An app stack `dev` that deploys web to its own namespace of the live cluster, and its registry stack."""

    def __init__(self, directory: Path, kubeconfig: Path) -> None:
        super().__init__(directory)
        self.kubeconfig = kubeconfig
        self.namespace = f"dkt-{uuid.uuid4().hex[:8]}"

    def namespace_of(self, stack: str) -> str:
        return self.namespace if stack == "dev" else f"{self.namespace}-{stack}"

    def live_app(self, stack: str = "dev", **overrides: Any) -> None:
        config = {"dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
                  "dockyard:releaseDir": str(self.dir / "releases" / stack),
                  "dockyard:kubernetes": {"namespace": self.namespace_of(stack)},
                  "dockyard:services": {"web": {"port": 8080, "desiredCount": 1}},
                  "dockyard:trust": "none"}  # unsigned on purpose; tests/signing covers the trust gate
        config.update(overrides)
        self.write_stack(stack, config)
        self.pulumi("stack", "init", stack, check=False)
        subprocess.run(["pulumi", "config", "set", "--secret", "--path", "dockyard:kubernetes.kubeconfig", "-s", stack,
                        "--cwd", str(self.dir), "--non-interactive"], input=self.kubeconfig.read_text(), text=True,
                       env=self.env, check=True, capture_output=True, timeout=120)

    def registry_of(self, web: str) -> None:
        """The registry stack records `web` (pushed by another build) and publishes it: `dockyard build`."""
        self.write_stack("registry", {"dockyard:role": "registry", "dockyard:registry": "external",
                                      "dockyard:publish": False, "dockyard:services": {"web": {}},
                                      "dockyard:prebuilt": {"web": web}})
        code, _, err = self.dockyard("build")
        assert code == 0, err[-2000:]


@pytest.fixture
def cluster_workspace(kubeconfig, images, tmp_path_factory) -> ClusterWorkspace:
    if os.environ.get("DOCKYARD_SKIP_E2E") == "1":
        pytest.skip("DOCKYARD_SKIP_E2E=1")
    ws = ClusterWorkspace(tmp_path_factory.mktemp("cluster"), kubeconfig)
    try:
        yield ws
    finally:
        ws.remove_all()
