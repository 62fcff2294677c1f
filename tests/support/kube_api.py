"""A Kubernetes API server's read side on 127.0.0.1, for tests without a cluster: real HTTP, real
bearer-token checks, answers shaped as the API server shapes them (Deployments, pod lists, Status
objects for 401 and 403), serving the objects a test records or computes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.loopback import Loopback, QuietHandler

DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")


def deployment(name: str, *, generation: int = 2, observed: int = 2, replicas: int = 1, ready: int = 1,
               conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Deployment as the API server returns it (the fields dockyard reads, and a few it does not)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "generation": generation, "labels": {"app.kubernetes.io/name": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": observed, "replicas": ready, "updatedReplicas": ready,
                       "readyReplicas": ready, "availableReplicas": ready, "conditions": conditions or []}}


def pod(name: str, service: str, image: str, *, ready: bool = True, waiting: str | None = None) -> dict[str, Any]:
    """A pod whose container pulled `image` (`…@sha256:…`), ready or not as its kubelet reports."""
    state = {"waiting": {"reason": waiting, "message": "back-off restarting failed container"}} if waiting else \
        {"running": {"startedAt": "2026-12-06T01:00:00Z"}}
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/name": service}},
            "spec": {"containers": [{"name": service, "image": image}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": service, "ready": ready, "restartCount": 0, "image": image,
                                              "imageID": image, "state": state}]}}


class KubeApi:
    """`objects(namespace, kind, name)` answers reads; `tokens` are the bearer tokens it accepts (none:
    any request is admitted), `forbidden` the (verb, resource) pairs RBAC refuses."""

    def __init__(self, objects: Callable[[str, str, str], dict[str, Any] | None]) -> None:
        self.objects = objects
        self.tokens: set[str] = set()
        self.forbidden: set[tuple[str, str]] = set()
        self.user = "system:serviceaccount:ci:deployer"
        self.requests: list[tuple[str, str]] = []  # (path with query, Authorization header)
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.requests.append((self.path, self.headers.get("Authorization", "")))
                self.send_json(*api.answer(self.path, self.headers.get("Authorization", "")))

        self.loopback = Loopback(Handler)
        self.url = self.loopback.base

    def close(self) -> None:
        self.loopback.stop()

    def answer(self, raw: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if self.tokens and authorization.removeprefix("Bearer ") not in self.tokens:
            return 401, status(401, "Unauthorized", "Unauthorized")
        url = urlparse(raw)
        if url.path == "/version":
            return 200, {"major": "1", "minor": "36", "gitVersion": "v1.36.3"}
        if match := DEPLOYMENT.match(url.path):
            namespace, name = match.groups()
            return self._read("get", "deployments", "apps", namespace, name)
        if match := PODS.match(url.path):
            namespace = match.group(1)
            code, body = self._read("list", "pods", "", namespace, "")
            if code == 200:
                wanted = dict(p.split("=", 1) for p in parse_qs(url.query).get("labelSelector", [""])[0].split(",")
                              if "=" in p)
                body["items"] = [p for p in body["items"]
                                 if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
            return code, body
        return 404, status(404, "NotFound", f"the server could not find the requested resource ({url.path})")

    def _read(self, verb: str, resource: str, group: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        if (verb, resource) in self.forbidden:
            what = f'{resource}.{group} "{name}"' if name and group else (f'{resource} "{name}"' if name else resource)
            return 403, status(403, "Forbidden", f'{what} is forbidden: User "{self.user}" cannot {verb} resource '
                                                 f'"{resource}" in API group "{group}" in the namespace "{namespace}"')
        found = self.objects(namespace, resource, name)
        if found is None:
            return 404, status(404, "NotFound", f'{resource} "{name}" not found')
        return 200, found


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def kubeconfig(path: Path, server: str, user: dict[str, Any], *, context: str = "test") -> Path:
    """A kubeconfig at `path` with one context `context` for `server`, logging in as `user` says."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "local", "cluster": {"server": server}}],
        "users": [{"name": "deployer", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": "local", "user": "deployer"}}]}))
    return path


def exec_plugin(directory: Path, tokens: list[str], *, expires: str | None = None,
                api_version: str = "client.authentication.k8s.io/v1") -> Path:
    """An exec credential plugin: prints the next of `tokens` (the last one again once used up) as an
    ExecCredential of `api_version`, and records each run's environment."""
    script = directory / "credential-plugin"
    script.write_text(f"""#!/usr/bin/env python3
import json, os, pathlib
here = pathlib.Path({str(directory)!r})
runs = here / "runs.jsonl"
count = len(runs.read_text().splitlines()) if runs.exists() else 0
with runs.open("a") as out:
    out.write(json.dumps({{"info": json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "null")),
                          "env": os.environ.get("DOCKYARD_TEST_PLUGIN_ENV")}}) + "\\n")
tokens = {tokens!r}
status = {{"token": tokens[min(count, len(tokens) - 1)]}}
if {expires!r}:
    status["expirationTimestamp"] = {expires!r}
print(json.dumps({{"apiVersion": {api_version!r}, "kind": "ExecCredential", "status": status}}))
""")
    script.chmod(0o755)
    return script


def plugin_runs(directory: Path) -> list[dict[str, Any]]:
    runs = directory / "runs.jsonl"
    return [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []
