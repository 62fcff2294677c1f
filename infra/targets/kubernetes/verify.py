"""What runs on a live Kubernetes cluster, read through its API server: rollouts, pod digests, health.

A small client of the API (stdlib `ssl` + `urllib`) that reads a kubeconfig,
and the check `dockyard` runs after every deploy to a live cluster: per
service, the Deployment's newest generation rolled out, every ready pod runs
the wanted digest (its `imageID`), and the service answers its health path and
`/version` through the API server's service proxy, which reaches the pods
from wherever the kubeconfig reaches the API server.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockyard.config import AppSettings
from dockyard.errors import BadInput, DockyardError
from dockyard.targets.checks import VerificationFailed

# Pod states that will not pass by waiting a little longer: fail now, with the reason.
STUCK = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
         "CreateContainerError", "RunContainerError"}


# Between two reads of a rollout: short, since a pod turning ready is what the user waits for, and a
# read is two small GETs.
POLL_SECONDS = 0.25


class KubeError(DockyardError):
    """The API server could not be reached, or refused a request."""


@dataclass(frozen=True)
class KubeConfig:
    """The current (or named) context of a kubeconfig: where the API server is and how to log in."""

    server: str
    ca: bytes | None = None  # PEM
    cert: bytes | None = None  # PEM client certificate
    key: bytes | None = None  # PEM client key
    token: str | None = None
    insecure: bool = False

    @classmethod
    def parse(cls, text: str, context: str | None = None, *, base: Path | None = None) -> KubeConfig:
        """`text` is a kubeconfig's content (a path to one is read too, as pulumi-kubernetes does)."""
        if "\n" not in text.strip() and Path(text.strip()).expanduser().is_file():
            path = Path(text.strip()).expanduser()
            return cls.parse(path.read_text(), context, base=path.parent)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise BadInput(f"the kubeconfig is not valid YAML: {err}") from None
        name = context or data.get("current-context")
        ctx = _named(data.get("contexts"), name, "context")
        cluster = _named(data.get("clusters"), ctx.get("cluster"), "cluster")
        user = _named(data.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}

        def blob(entry: Mapping[str, Any], key: str) -> bytes | None:
            if entry.get(f"{key}-data"):
                return base64.b64decode(entry[f"{key}-data"])
            if entry.get(key):
                path = Path(entry[key]).expanduser()
                return (path if path.is_absolute() or base is None else base / path).read_bytes()
            return None

        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        if "exec" in user or "auth-provider" in user:
            raise BadInput(f"kubeconfig user {ctx.get('user')} logs in through a plugin, which dockyard's "
                           "verification does not run", hint="use a context with a client certificate or a token")
        return cls(server=str(cluster["server"]).rstrip("/"), ca=blob(cluster, "certificate-authority"),
                   cert=blob(user, "client-certificate"), key=blob(user, "client-key"), token=token,
                   insecure=bool(cluster.get("insecure-skip-tls-verify")))


def _named(items: Any, name: Any, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise BadInput(f"the kubeconfig has no {what} named {name!r}")


class KubeClient:
    def __init__(self, config: KubeConfig, timeout: float = 10.0) -> None:
        self.config, self.timeout = config, timeout
        context = ssl.create_default_context(cadata=config.ca.decode() if config.ca else None)
        if config.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if config.cert and config.key:
            # ssl loads a client certificate from files only: hand it over through private temporary files.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(config.cert)
                key.touch(mode=0o600)
                key.write_bytes(config.key)
                context.load_cert_chain(cert, key)
        self._ssl = context

    def request(self, path: str, *, accept: str = "application/json", method: str = "GET") -> tuple[int, bytes]:
        """`method` `path` on the API server: (status, body). 0 when nothing answered."""
        req = urllib.request.Request(self.config.server + path, headers={"Accept": accept}, method=method)
        if self.config.token:
            req.add_header("Authorization", f"Bearer {self.config.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            return 0, str(getattr(err, "reason", err)).encode()

    def get(self, path: str) -> dict[str, Any]:
        status, body = self.request(path)
        if status != 200:
            raise KubeError(f"GET {path} on {self.config.server}: {_reason(status, body)}")
        return json.loads(body)


def _reason(status: int, body: bytes) -> str:
    if status == 0:
        return f"no answer ({body.decode(errors='replace')[:120]})"
    try:
        return f"HTTP {status}: {json.loads(body).get('message', '')}"[:200]
    except (ValueError, AttributeError):
        return f"HTTP {status}: {body.decode(errors='replace')[:120]}"


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
    rolled_out = (status.get("observedGeneration", 0) >= meta.get("generation", 0)
                  and status.get("updatedReplicas", 0) == replicas
                  and status.get("availableReplicas", 0) == replicas
                  and status.get("replicas", 0) == replicas)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return ServiceState(False, "", {}, stuck=f"rollout exceeded its deadline: {condition.get('message')}")
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            # Admission refused the pods (e.g. PodSecurity): the API server's own words say why.
            return ServiceState(False, "", {}, stuck=f"pods refused: {condition.get('message')}")
    selector = ",".join(f"{k}={v}" for k, v in sorted(spec["selector"].get("matchLabels", {}).items()))
    pods = client.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={urllib.parse.quote(selector)}")
    ready: dict[str, str] = {}
    stuck = None
    for pod in pods.get("items", []):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses") or []}
        container = statuses.get(name) or next(iter(statuses.values()), None)
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
        if container and conditions.get("Ready") == "True":
            ready[pod["metadata"]["name"]] = digest_of(container.get("imageID", "")) or "(no imageID)"
        waiting = ((container or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK and digest_of(_image_of(pod, name)) == digest_of(wanted):
            stuck = f"pod {pod['metadata']['name']}: {waiting['reason']}: {(waiting.get('message') or '')[:160]}"
    on_wanted = sum(1 for d in ready.values() if d == digest_of(wanted))
    progress = f"{on_wanted}/{replicas} pods on {short(digest_of(wanted))}"
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
    """Wait until every service of `wanted` runs its digest and answers; service -> commit its /version reports.

    Raises VerificationFailed naming the service, the digest found and the one wanted.
    """
    deadline = time.monotonic() + timeout
    versions: dict[str, str] = {}
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
                raise VerificationFailed(
                    f"{name} in {namespace}: {'rolled out' if state.rolled_out else 'not rolled out'} after "
                    f"{timeout:.0f}s ({state.progress or 'no pods'}); found {_found(state, want)}, wanted {want}")
            sleep(POLL_SECONDS)
        service = settings.services.get(name)
        if service is not None and service.port is not None:
            versions[name] = _answers(client, namespace, name, service.health_check_path, deadline, sleep)
            log(f"   {name}: {service.health_check_path} and /version answer through the API server "
                f"(commit {versions[name][:12]})")
    return versions


def _found(state: ServiceState, want: str) -> str:
    others = sorted({d for d in state.ready_digests.values() if d != want})
    if others:
        return ", ".join(others)
    return want if state.ready_digests else "no ready pod"


def _answers(client: KubeClient, namespace: str, name: str, health_path: str, deadline: float,
             sleep: Callable[[float], None]) -> str:
    base = f"/api/v1/namespaces/{namespace}/services/{name}:http/proxy"
    for path in (health_path, "/version"):
        while True:
            status, body = client.request(base + path, accept="*/*")
            if 200 <= status < 300:
                break
            if time.monotonic() >= deadline:
                raise VerificationFailed(f"{name} in {namespace} does not answer {path} through the API server's "
                                         f"service proxy ({_reason(status, body)})")
            sleep(POLL_SECONDS)
    try:
        return str(json.loads(body).get("commit", "unknown"))
    except (ValueError, AttributeError):
        return "unknown"


def kubeconfig_text(settings: AppSettings, secret: Callable[[], str | None]) -> str | None:
    """The kubeconfig the stack deploys with: its (secret) config value, else the ambient one the provider uses."""
    kube = settings.kubernetes
    if kube.kubeconfig is not None:
        from dockyard.config import ENCRYPTED

        return secret() if kube.kubeconfig == ENCRYPTED else kube.kubeconfig
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
    return Path(path).read_text() if Path(path).is_file() else None


def stack_secret(project_dir: Path, stack: str, key: str = "dockyard:kubernetes.kubeconfig") -> str | None:
    """A secret config value of a stack, decrypted by the engine (the stack file holds only ciphertext).

    One `pulumi config get`, not the Automation API's workspace (which runs the CLI three times): it
    stands between the deploy and the first look at the rollout.
    """
    import subprocess

    try:
        got = subprocess.run(["pulumi", "config", "get", "--path", key, "--stack", stack, "--cwd", str(project_dir),
                              "--non-interactive"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return got.stdout.rstrip("\n") if got.returncode == 0 else None


def verify_stack(settings: AppSettings, outputs: Mapping[str, Any], wanted: Mapping[str, str], *,
                 kubeconfig: str | None, timeout: float, log: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """After `up` of a live Kubernetes stack: what runs in its namespace is `wanted`, and it answers."""
    if not kubeconfig:
        raise VerificationFailed("no kubeconfig to verify the cluster with: dockyard:kubernetes.kubeconfig is not "
                                 "set and neither KUBECONFIG nor ~/.kube/config names one")
    namespace = str(outputs.get("namespace") or settings.kubernetes.namespace)
    client = KubeClient(KubeConfig.parse(kubeconfig, settings.kubernetes.context))
    return verify_live(client, settings, namespace, wanted, timeout=timeout, log=log)


def main(argv: list[str]) -> int:
    """`python -m dockyard.targets.kubernetes.verify ping KUBECONFIG`: one line naming the server, exit 0 if it answers."""
    if len(argv) != 2 or argv[0] != "ping":
        print("usage: python -m dockyard.targets.kubernetes.verify ping KUBECONFIG", file=sys.stderr)
        return 2
    try:
        config = KubeConfig.parse(argv[1])
        version = KubeClient(config, timeout=5).get("/version")
    except (DockyardError, OSError, ValueError) as err:
        print(f"no answer: {getattr(err, 'message', err)}", file=sys.stderr)
        return 1
    print(f"{config.server} (Kubernetes {version.get('gitVersion', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
