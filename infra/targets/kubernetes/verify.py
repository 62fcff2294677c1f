"""What runs on a live Kubernetes cluster, read through its API server: rollouts, pod digests, readiness.

The check `dockyard` runs after every deploy to a live cluster, per service: the Deployment's
newest generation rolled out, and every ready pod runs the wanted digest (its `imageID`). Health is
readiness as the kubelet sees it: the readiness probe is the service's health check, run by the
kubelet on the pod's own node, so nothing needs a network path from the control plane or from this
machine to the pods (a NetworkPolicy that admits only the app's peers, a managed control plane off
the pods' network). The API client and what it refuses before a deploy are in `client.py`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.config import AppSettings
from dockyard.errors import BadInput, DockyardError
from dockyard.targets.checks import VerificationFailed
from dockyard.targets.kubernetes.client import KubeClient, KubeError, check, connect, warm_up

__all__ = ["KubeClient", "KubeError", "connect", "verify_live", "verify_stack", "observe"]

# Pod states that will not pass by waiting a little longer: fail now, with the reason.
STUCK = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
         "CreateContainerError", "RunContainerError"}


# Between two reads of a rollout: short, since a pod turning ready is what the user waits for, and a
# read is two small GETs.
POLL_SECONDS = 0.25


def digest_of(reference: str) -> str:
    """`…@sha256:…` (an image reference or a pod's imageID) -> `sha256:…`; anything else unchanged."""
    return reference.rsplit("@", 1)[-1] if "@" in reference else reference


def short(digest: str) -> str:
    return digest[:19] + "…" if digest.startswith("sha256:") else digest


@dataclass
class ServiceState:
    """One observation of a service's Deployment and pods."""

    rolled_out: bool
    progress: str  # e.g. "1/2 pods on sha256:abc…"
    ready_digests: dict[str, str]  # pod name -> digest it runs (ready pods only)
    stuck: str | None = None  # a pod's reason that waiting will not fix


def observe(client: KubeClient, namespace: str, name: str, wanted: str) -> ServiceState:
    deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    spec, status, meta = deployment.get("spec", {}), deployment.get("status", {}), deployment["metadata"]
    replicas = spec.get("replicas", 1)
    # Until the controller has observed the newest generation, its status (and its conditions) are about
    # an earlier one: a ProgressDeadlineExceeded of a stuck earlier rollout says nothing of this release.
    observed = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    rolled_out = (observed
                  and status.get("updatedReplicas", 0) == replicas
                  and status.get("availableReplicas", 0) == replicas
                  and status.get("replicas", 0) == replicas)
    for condition in (status.get("conditions") or []) if observed else []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return ServiceState(False, "", {}, stuck=f"rollout exceeded its deadline: {condition.get('message')}")
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            # Admission refused the pods (e.g. PodSecurity): the API server's own words say why.
            return ServiceState(False, "", {}, stuck=f"pods refused: {condition.get('message')}")
    selector = ",".join(f"{k}={v}" for k, v in sorted(spec["selector"].get("matchLabels", {}).items()))
    pods = client.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})
    ready: dict[str, str] = {}
    stuck = None
    for pod in pods.get("items", []):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses") or []}
        container = statuses.get(name) or next(iter(statuses.values()), None)
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
        # Ready as the kubelet reports it: its readiness probe (the service's health check) passes.
        if container and conditions.get("Ready") == "True" and container.get("ready", True):
            ready[pod["metadata"]["name"]] = digest_of(container.get("imageID", "")) or "(no imageID)"
        waiting = ((container or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK and digest_of(_image_of(pod, name)) == digest_of(wanted):
            stuck = f"pod {pod['metadata']['name']}: {waiting['reason']}: {(waiting.get('message') or '')[:160]}"
    on_wanted = sum(1 for d in ready.values() if d == digest_of(wanted))
    progress = f"{on_wanted}/{replicas} pods ready on {short(digest_of(wanted))}"
    others = sorted({d for d in ready.values() if d != digest_of(wanted)})
    if others:
        progress += f", {len(ready) - on_wanted} on {', '.join(short(d) for d in others)}"
    return ServiceState(rolled_out, progress, ready, stuck)


def _image_of(pod: Mapping[str, Any], name: str) -> str:
    containers = pod.get("spec", {}).get("containers") or [{}]
    return next((c.get("image", "") for c in containers if c.get("name") == name), containers[0].get("image", ""))


def verify_live(client: KubeClient, settings: AppSettings, namespace: str, wanted: Mapping[str, str], *,
                timeout: float, log: Callable[[str], None] = lambda _: None,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Wait until every service of `wanted` runs its digest on ready pods; service -> the digest verified.

    Raises VerificationFailed (evidence about the app) naming the service, the digest found and the one
    wanted; KubeError when the API server could not be asked.
    """
    deadline = time.monotonic() + timeout
    verified: dict[str, str] = {}
    for name in sorted(wanted):
        want = digest_of(wanted[name])
        last = None
        while True:
            state = observe(client, namespace, name, wanted[name])
            if state.progress and state.progress != last:
                log(f"   {name}: {state.progress}")
                last = state.progress
            if state.stuck:
                raise VerificationFailed(f"{name} in {namespace}: {state.stuck}; "
                                         f"found {_found(state, want)}, wanted {want}")
            if state.rolled_out and state.ready_digests and all(d == want for d in state.ready_digests.values()):
                break
            if time.monotonic() >= deadline:
                service = settings.services.get(name)
                probe = (f", its readiness probe {service.health_check_path} not passing"
                         if service is not None and service.port is not None and not state.ready_digests else "")
                raise VerificationFailed(
                    f"{name} in {namespace}: {'rolled out' if state.rolled_out else 'not rolled out'} after "
                    f"{timeout:.0f}s ({state.progress or 'no pods'}{probe}); found {_found(state, want)}, "
                    f"wanted {want}")
            sleep(POLL_SECONDS)
        verified[name] = want
        service = settings.services.get(name)
        if service is not None and service.port is not None:
            log(f"   {name}: every pod ready (the kubelet's readiness probe, {service.health_check_path}) "
                f"on {short(want)}")
    return verified


def _found(state: ServiceState, want: str) -> str:
    others = sorted({d for d in state.ready_digests.values() if d != want})
    if others:
        return ", ".join(others)
    return want if state.ready_digests else "no ready pod"


def kubeconfig_text(settings: AppSettings, secret: Callable[[], str | None]) -> str | None:
    """The kubeconfig the stack deploys with: its (secret) config value, else the ambient one the provider uses."""
    kube = settings.kubernetes
    if kube.kubeconfig is not None:
        from dockyard.config import ENCRYPTED

        return secret() if kube.kubeconfig == ENCRYPTED else kube.kubeconfig
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
    # The path, not its text: files it names by relative paths are read beside it, as kubectl does.
    return str(Path(path).resolve()) if Path(path).is_file() else None


def stack_secret(project_dir: Path, stack: str, key: str = "dockyard:kubernetes.kubeconfig") -> str | None:
    """A secret config value of a stack, decrypted by the engine (the stack file holds only ciphertext).

    One `pulumi config get`, not the Automation API's workspace (which runs the CLI three times): it
    stands between the deploy and the first look at the rollout.
    """
    import subprocess

    if (project_dir, stack, key) in _SECRETS:  # read once per command: before `up`, and again to verify
        return _SECRETS[(project_dir, stack, key)]
    try:
        got = subprocess.run(["pulumi", "config", "get", "--path", key, "--stack", stack, "--cwd", str(project_dir),
                              "--non-interactive"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    value = got.stdout.rstrip("\n") if got.returncode == 0 else None
    _SECRETS[(project_dir, stack, key)] = value
    return value


_SECRETS: dict[tuple[Path, str, str], str | None] = {}


def verify_stack(settings: AppSettings, outputs: Mapping[str, Any], wanted: Mapping[str, str], *,
                 kubeconfig: str | None, timeout: float, log: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """After `up` of a live Kubernetes stack: what runs in its namespace is `wanted`, on ready pods.

    Anything that keeps dockyard from looking is a KubeError (exit 1, no rollback), never a
    VerificationFailed: the pre-flight check refuses an unusable kubeconfig before `up`.
    """
    if not kubeconfig:
        raise KubeError("no kubeconfig to verify the cluster with: dockyard:kubernetes.kubeconfig is not set and "
                        "neither KUBECONFIG nor ~/.kube/config names one",
                        hint="set it: pulumi config set --secret --path dockyard:kubernetes.kubeconfig < FILE")
    namespace = str(outputs.get("namespace") or settings.kubernetes.namespace)
    try:
        client = connect(kubeconfig, settings.kubernetes.context)
    except BadInput as err:
        raise KubeError(err.message, hint=err.hint) from None
    return verify_live(client, settings, namespace, wanted, timeout=timeout, log=log)


def preflight(settings: AppSettings, kubeconfig: str | None) -> None:
    """Before `up`: the kubeconfig exists and dockyard can log in with it (BadInput naming the user and fix)."""
    if not kubeconfig and settings.kubernetes.kubeconfig is not None:
        raise BadInput(f"dockyard:kubernetes.kubeconfig of stack {settings.stack} could not be read (pulumi "
                       "config get failed to decrypt it)", hint="check the stack's secrets provider (e.g. "
                                                                "PULUMI_CONFIG_PASSPHRASE), then retry")
    if not kubeconfig:
        raise BadInput("no kubeconfig for the cluster: dockyard:kubernetes.kubeconfig is not set and neither "
                       "KUBECONFIG nor ~/.kube/config names one",
                       hint="set it: pulumi config set --secret --path dockyard:kubernetes.kubeconfig < FILE")
    login = check(kubeconfig, settings.kubernetes.context)
    if login.user.get("exec"):
        connect(kubeconfig, settings.kubernetes.context)  # run the plugin now: its failure is refused too
    else:
        warm_up()


def main(argv: list[str]) -> int:
    """`python -m dockyard.targets.kubernetes.verify ping KUBECONFIG`: one line naming the server, exit 0 if it answers."""
    if len(argv) != 2 or argv[0] != "ping":
        print("usage: python -m dockyard.targets.kubernetes.verify ping KUBECONFIG", file=sys.stderr)
        return 2
    try:
        client = connect(argv[1], timeout=5)
        version = client.get("/version")
    except (DockyardError, OSError, ValueError) as err:
        print(f"no answer: {getattr(err, 'message', err)}", file=sys.stderr)
        return 1
    print(f"{client.server} (Kubernetes {version.get('gitVersion', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
