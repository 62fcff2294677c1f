"""The demo on a live cluster: which cluster, a clean slate in its namespaces, its kubeconfig as the
stacks' secret, and the pods each step leaves running."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.targets.kubernetes import verify as kube_verify


def live_cluster(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(kubeconfig path, how it answered) when KUBECONFIG names a cluster that answers; else (None, why not)."""
    path = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if not path:
        return None, "KUBECONFIG is not set (./scripts/cluster up starts a cluster on this machine)"
    if not Path(path).is_file():
        return None, f"KUBECONFIG={path} does not exist"
    try:
        client = kube_verify.connect(str(Path(path).resolve()), timeout=5)
        version = client.get("/version")
    except (DockyardError, OSError, ValueError) as err:
        return None, f"the cluster of KUBECONFIG={path} does not answer ({getattr(err, 'message', err)})"
    return path, f"{client.server}, Kubernetes {version.get('gitVersion', '?')}"


def reset_namespaces(kubeconfig: Path, names: tuple[str, ...], log: Callable[[str], None],
                     timeout: float = 180.0) -> None:
    """Delete what an earlier demo left running in its namespaces: this run's stacks start from nothing,
    and objects another run's engine manages would conflict with theirs."""
    client = kube_verify.connect(str(kubeconfig.resolve()))
    existing = [n for n in names if client.request(f"/api/v1/namespaces/{n}")[0] == 200]
    listed = client.get("/api/v1/namespaces").get("items", [])
    existing += [item["metadata"]["name"] for item in listed
                 if item["metadata"]["name"].startswith(tuple(f"{n}-" for n in names))]
    if not existing:
        return
    log(f"dockyard demo: deleting what an earlier demo left in {', '.join(existing)}")
    for name in existing:
        client.request(f"/api/v1/namespaces/{name}", method="DELETE")
    deadline = time.monotonic() + timeout
    while any(client.request(f"/api/v1/namespaces/{n}")[0] == 200 for n in existing):
        if time.monotonic() > deadline:
            raise DockyardError(f"namespaces {', '.join(existing)} are still terminating after {timeout:.0f}s",
                                hint="look at them with kubectl get all -n <namespace>, then run the demo again")
        time.sleep(1)


def set_kubeconfig(workdir: Path, stacks: tuple[str, ...], kubeconfig: Path) -> None:
    """The cluster's kubeconfig as each stack's secret config (encrypted in the stack file)."""
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(workdir))
    for stack in stacks:
        auto.Stack.create_or_select(stack, workspace).set_config(
            "dockyard:kubernetes.kubeconfig", auto.ConfigValue(value=kubeconfig.read_text(), secret=True), path=True)


@dataclass
class PodsSeen:
    """Each pod of a namespace with the digest it runs, as the API server reports it."""

    namespace: str
    pods: list[tuple[str, str]]
    note: str = ""

    def lines(self) -> list[str]:
        return ([self.note] if self.note else []) + [f"{self.namespace}: {pod} runs {kube_verify.short(digest)}"
                                                     for pod, digest in self.pods]


def pods_of(kubeconfig: Path, namespace: str, note: str = "") -> PodsSeen:
    client = kube_verify.connect(str(kubeconfig.resolve()))
    items = client.get(f"/api/v1/namespaces/{namespace}/pods").get("items", [])
    seen = []
    for pod in sorted(items, key=lambda p: p["metadata"]["name"]):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for status in pod.get("status", {}).get("containerStatuses") or []:
            seen.append((pod["metadata"]["name"], kube_verify.digest_of(status.get("imageID") or "(pulling)")))
    return PodsSeen(namespace, seen, note)
