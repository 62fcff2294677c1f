"""Helpers for the NetworkPolicy tests: the project's own manifests for a small app, client pods, probes.

The app's objects are what the program deploys (`dockyard.targets.kubernetes.manifests.service_objects`)
for settings parsed from raw stack config by `dockyard.config.load`, in the namespace
`program.stack_namespace` gives the stack; they are applied with kubectl.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dockyard import config
from dockyard.targets.kubernetes import manifests, program
from tests.cluster.conftest import CLUSTER_DIR, kubectl

AGENT_PID = CLUSTER_DIR / "run" / "kube-router.pid"
# What a pod runs to ask a Service for /healthz: the HTTP status, or the error's name.
PROBE = """
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=2)
try:
    c.request("GET", "/healthz")
    print(c.getresponse().status)
except OSError as err:
    print(type(err).__name__)
"""


def require_enforcing_agent() -> None:
    """Skip, in one line, unless the private cluster's NetworkPolicy agent runs."""
    try:
        pid = int(AGENT_PID.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pytest.skip("NetworkPolicy is not enforced: no policy agent runs beside the private cluster "
                    "(./scripts/cluster up starts it)")
    assert b"kube-router" in cmdline, f"{AGENT_PID} names pid {pid}, which is not the agent"


@contextmanager
def agent_lock(exclusive: bool) -> Iterator[None]:
    """Tests that need the agent hold it shared; the test that stops it holds it alone (xdist workers)."""
    path = CLUSTER_DIR / "netpol-tests.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def settings(stack: str, namespace: str, ingress_from: list[dict[str, Any]]) -> config.AppSettings:
    raw = {"dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
           "dockyard:services": json.dumps({"web": {"port": 8080, "desiredCount": 1}, "worker": {"desiredCount": 1}}),
           "dockyard:kubernetes": json.dumps({"namespace": namespace, "host": "app.example.test",
                                              "ingressFrom": ingress_from})}
    loaded = config.load(raw, stack=stack)
    assert isinstance(loaded, config.AppSettings)
    return loaded


def context(app: config.AppSettings) -> manifests.ServiceContext:
    """As the program builds it for a deploy (program.deploy)."""
    kube = app.kubernetes
    return manifests.ServiceContext(stack=app.stack, namespace=program.stack_namespace(app), release="file:1",
                                    ingress_class=kube.ingress_class, ingress_from=kube.ingress_from, host=kube.host,
                                    tls_secret=kube.tls_secret, database_secret=None)


def apply(objects: list[Mapping[str, Any]], workdir: Path) -> None:
    path = workdir / f"apply-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
    kubectl("apply", "-f", str(path), timeout=120)


def client_pod(name: str, namespace: str, labels: Mapping[str, str], app: config.AppSettings,
               image: str) -> dict[str, Any]:
    """A pod that sleeps, with the project's pod spec for the stack's worker (restricted profile)."""
    spec = manifests.pod_spec(app.services["worker"], context(app), image)
    container = spec["containers"][0]
    container["command"] = ["python", "-c", "import time; time.sleep(3600)"]
    # A client needs next to nothing: the single node's CPU is shared with every other test.
    container["resources"] = {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"cpu": "100m", "memory": "48Mi"}}
    spec["serviceAccountName"] = "default"
    spec["terminationGracePeriodSeconds"] = 1
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                            "labels": dict(labels)}, "spec": spec}


def ready(namespace: str, what: str, *args: str) -> None:
    """kubectl rollout status / wait; on failure, the namespace's last warning says why (e.g. no CPU left)."""
    try:
        kubectl(*args, timeout=240)
    except subprocess.CalledProcessError as err:
        warnings = kubectl("get", "events", "-n", namespace, "--field-selector", "type=Warning", "-o",
                           "jsonpath={range .items[*]}{.involvedObject.name}: {.message}{\"\\n\"}{end}")
        pytest.fail(f"{what} in {namespace} not ready: {err.stderr.strip()[-300:]}; "
                    f"last warning: {(warnings.strip().splitlines() or ['none'])[-1]}")


def plain_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service_ip(namespace: str, name: str) -> str:
    return kubectl("get", "service", name, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").strip()


def probe(namespace: str, pod: str, ip: str) -> str:
    """What `pod` gets from the Service at `ip`: "200", or e.g. "ConnectionRefusedError", "TimeoutError"."""
    try:
        return kubectl("exec", "-n", namespace, pod, "--", "python", "-c", PROBE, ip, timeout=30).strip()
    except subprocess.CalledProcessError as err:
        return f"exec failed: {err.stderr.strip()[-300:]}"


def wait_until(namespace: str, pod: str, ip: str, admitted: bool, within: float = 30) -> str:
    """Probe until the answer is (or is not) 200: the agent learns new pods' addresses within seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = probe(namespace, pod, ip)
        if (answer == "200") == admitted and not answer.startswith("exec failed"):
            return answer
        if time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def refused_every_time(namespace: str, pod: str, ip: str, times: int = 3) -> list[str]:
    answers = []
    for _ in range(times):
        answers.append(probe(namespace, pod, ip))
        time.sleep(0.3)
    return answers


def delete_namespaces(*names: str) -> None:
    try:
        kubectl("delete", "namespace", *names, "--wait=false", "--ignore-not-found")
    except subprocess.CalledProcessError:
        pass  # the cluster's `down` deletes what is left
