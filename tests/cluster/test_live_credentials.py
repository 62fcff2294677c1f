"""Credentials as teams have them, on a real cluster: an exec credential plugin (as EKS, GKE and AKS
kubeconfigs log in), and a ServiceAccount bound to exactly deploy/rbac/dockyard-deployer.yaml.

What runs is read with kubectl (a client dockyard does not control), never from dockyard's own output.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.targets.kubernetes import manifests
from tests.cluster.conftest import kubectl, pod_digests
from tests.e2e.conftest import PROJECT_DIR

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

ROLE = PROJECT_DIR / "deploy" / "rbac" / "dockyard-deployer.yaml"


def digest(ref: str) -> str:
    return ref.rsplit("@", 1)[1]


def admin_login(kubeconfig: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cluster, user) of the admin kubeconfig's current context, file references read inline."""
    data = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in data["contexts"] if c["name"] == data["current-context"])
    cluster = dict(next(c["cluster"] for c in data["clusters"] if c["name"] == context["cluster"]))
    user = dict(next(u["user"] for u in data["users"] if u["name"] == context["user"]))
    for entry, key in ((cluster, "certificate-authority"), (user, "client-certificate"), (user, "client-key")):
        if entry.get(key):
            path = Path(entry.pop(key))
            path = path if path.is_absolute() else kubeconfig.parent / path
            entry[f"{key}-data"] = base64.b64encode(path.read_bytes()).decode()
    return cluster, user


def kubeconfig_text(cluster: dict[str, Any], user: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "team",
                           "clusters": [{"name": "theirs", "cluster": cluster}],
                           "users": [{"name": "ci", "user": user}],
                           "contexts": [{"name": "team", "context": {"cluster": "theirs", "user": "ci"}}]})


def set_stack_kubeconfig(ws, stack: str, text: str) -> None:
    subprocess.run(["pulumi", "config", "set", "--secret", "--path", "dockyard:kubernetes.kubeconfig", "-s", stack,
                    "--cwd", str(ws.dir), "--non-interactive"], input=text, text=True, env=ws.env, check=True,
                   capture_output=True, timeout=120)


def apply(tmp_path: Path, *objects: dict[str, Any]) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    kubectl("apply", "-f", str(path))


def test_an_exec_plugin_kubeconfig_drives_promote_and_rollback_to_verified(cluster_workspace, images, tmp_path):
    ws = cluster_workspace
    cluster, admin = admin_login(ws.kubeconfig)
    # The plugin hands over the admin's client certificate, as an ExecCredential (as a cloud's plugin
    # hands over a token): kubectl's exec protocol, run by the engine and by dockyard alike.
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {
        "clientCertificateData": base64.b64decode(admin["client-certificate-data"]).decode(),
        "clientKeyData": base64.b64decode(admin["client-key-data"]).decode()}}
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    plugin = tmp_path / "team-login"
    plugin.write_text(f"#!/bin/sh\necho run >> {tmp_path / 'runs'}\ncat {tmp_path / 'credential.json'}\n")
    plugin.chmod(0o755)
    text = kubeconfig_text(cluster, {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                              "command": str(plugin), "interactiveMode": "Never",
                                              "provideClusterInfo": True}})
    good, other = images.web("ok"), images.web("ok2")
    ws.registry_of(good)
    ws.live_app()
    set_stack_kubeconfig(ws, "dev", text)
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0 and out["verified"], err[-2000:]
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(good)}
    ws.registry_of(other)
    code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
    assert code == 0 and out["verified"], err[-2000:]
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(other)}
    code, out, err = ws.dockyard("rollback", "dev", "--to", "1", "--yes", "--json")
    assert code == 0 and out["verified"], err[-2000:]
    assert set(pod_digests(ws.namespace, "web").values()) == {digest(good)}
    assert (tmp_path / "runs").read_text().count("run") >= 3  # dockyard's own logins, one per command


def test_the_documented_role_is_enough_and_one_permission_less_fails_cleanly_without_rollback(
        cluster_workspace, images, tmp_path):
    ws = cluster_workspace
    namespace = ws.namespace
    cluster, _ = admin_login(ws.kubeconfig)
    role = yaml.safe_load(ROLE.read_text())
    role["metadata"]["namespace"] = namespace
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "dockyard-deployer", "namespace": namespace}}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "dockyard-deployer", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dockyard-deployer"},
               "subjects": [{"kind": "ServiceAccount", "name": "dockyard-deployer", "namespace": namespace}]}
    # The administrator's part: the namespace (labelled as dockyard labels it), the Role, the binding.
    apply(tmp_path, manifests.namespace(namespace), account, role, binding)
    try:
        token = kubectl("create", "token", "dockyard-deployer", "-n", namespace, "--duration", "1h").strip()
        good, other = images.web("ok"), images.web("ok2")
        ws.registry_of(good)
        ws.live_app(**{"dockyard:kubernetes": {"namespace": namespace, "createNamespace": False}})
        set_stack_kubeconfig(ws, "dev", kubeconfig_text(cluster, {"token": token}))
        code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
        assert code == 0 and out["verified"], err[-3000:]
        assert set(pod_digests(namespace, "web").values()) == {digest(good)}

        # One permission less: verification may no longer list the pods.
        role["rules"] = [r for r in role["rules"] if r["resources"] != ["pods"]]
        apply(tmp_path, role)
        ws.registry_of(other)
        code, out, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes", "--json")
        assert code == 1 and out["error"]["code"] == "failed", err[-3000:]
        message = out["error"]["message"]
        assert 'cannot list resource "pods"' in message and "\n" not in message and "Traceback" not in err
        assert "rolled back" not in message
        code, history, _ = ws.dockyard("history", "dev", "--json")
        assert [r["version"] for r in history["releases"]] == [2, 1]
        assert history["releases"][0]["rollback"] is None
        code, status, _ = ws.dockyard("status", "dev", "--json")
        dev = status["environments"]["dev"]
        assert (dev["deployed"], dev["knownGood"], dev["held"], dev["unverified"]) == (2, 1, None, True)
        # The engine's apply went through: what runs is the release dockyard could not verify.
        deployment = json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json"))
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == other
        # The documented Role again: it also lets the engine delete everything (a destroy, as a service
        # removed from the stack would), waiting for each object to be gone.
        apply(tmp_path, yaml.safe_load(ROLE.read_text()) | {"metadata": role["metadata"]})
        destroyed = ws.pulumi("destroy", "--yes", "--skip-preview", "-s", "dev", check=False)
        assert destroyed.returncode == 0, destroyed.stderr[-3000:] + destroyed.stdout[-3000:]
        until = time.monotonic() + 120  # a Deployment goes once its pods have
        while json.loads(kubectl("get", "deployments,services,serviceaccounts,networkpolicies", "-n", namespace,
                                 "-l", "app.kubernetes.io/name=web", "-o", "json"))["items"]:
            assert time.monotonic() < until, "the destroy left web's objects behind"
            time.sleep(1)
    finally:
        # The namespace is the administrator's: delete it, and drop the stack's state without a destroy
        # (which would log in as the deployer, whose Role goes with the namespace).
        kubectl("delete", "namespace", namespace, "--wait=false")
        ws.pulumi("stack", "rm", "--force", "--yes", "-s", "dev", check=False)
