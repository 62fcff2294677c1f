"""Logging in to an API server as kubectl does: kubeconfigs dockyard can use, and the ones it refuses
before anything changes. Against a real HTTP server on 127.0.0.1 that checks bearer tokens."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from dockyard.errors import BadInput
from dockyard.targets.kubernetes import client as kube_client
from tests.support.kube_api import KubeApi, deployment, exec_plugin, kubeconfig, plugin_runs


@pytest.fixture
def api():
    server = KubeApi(lambda ns, kind, name: deployment(name) if kind == "deployments" else {"items": []})
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fresh_clients():
    kube_client._CLIENTS.clear()
    yield
    kube_client._CLIENTS.clear()


def test_an_exec_plugin_logs_in_with_its_env_and_the_cluster_it_asked_for(api, tmp_path):
    api.tokens = {"from-plugin"}
    plugin = exec_plugin(tmp_path, ["from-plugin"])
    path = kubeconfig(tmp_path / "config", api.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never",
        "env": [{"name": "DOCKYARD_TEST_PLUGIN_ENV", "value": "set-by-kubeconfig"}], "provideClusterInfo": True}})
    client = kube_client.connect(str(path), timeout=5)
    assert client.get("/apis/apps/v1/namespaces/ns/deployments/web")["metadata"]["name"] == "web"
    assert api.requests[-1][1] == "Bearer from-plugin"
    (run,) = plugin_runs(tmp_path)
    assert run["env"] == "set-by-kubeconfig"
    assert run["info"]["kind"] == "ExecCredential" and run["info"]["spec"]["cluster"]["server"] == api.url


def test_a_revoked_exec_credential_is_fetched_again_on_401(api, tmp_path):
    api.tokens = {"second"}
    plugin = exec_plugin(tmp_path, ["first", "second"], api_version="client.authentication.k8s.io/v1beta1")
    path = kubeconfig(tmp_path / "config", api.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}})
    assert kube_client.connect(str(path), timeout=5).get("/version")["gitVersion"] == "v1.36.3"
    assert [auth for _, auth in api.requests] == ["Bearer first", "Bearer second"]
    assert len(plugin_runs(tmp_path)) == 2


def test_an_exec_credential_is_kept_until_it_expires(api, tmp_path):
    api.tokens = {"t1", "t2"}
    soon = (datetime.now(timezone.utc) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plugin = exec_plugin(tmp_path, ["t1", "t2"], expires=soon)
    path = kubeconfig(tmp_path / "config", api.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})
    client = kube_client.connect(str(path), timeout=5)
    client.get("/version")
    client.get("/version")
    # Within the expiry skew of a credential that expires in 5 s: each read fetches a fresh one.
    assert len(plugin_runs(tmp_path)) == 3
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube_client._CLIENTS.clear()
    (tmp_path / "runs.jsonl").unlink()
    plugin = exec_plugin(tmp_path, ["t1"], expires=later)
    client = kube_client.connect(str(path), timeout=5)
    for _ in range(3):
        client.get("/version")
    assert len(plugin_runs(tmp_path)) == 1


def test_a_token_file_beside_the_kubeconfig_and_a_named_context(api, tmp_path):
    api.tokens = {"from-file"}
    (tmp_path / "token").write_text("from-file\n")
    config = json.loads(kubeconfig(tmp_path / "config", "https://elsewhere.invalid:6443", {"token": "x"}).read_text())
    config["clusters"].append({"name": "here", "cluster": {"server": api.url}})
    config["users"].append({"name": "robot", "user": {"tokenFile": "token"}})
    config["contexts"].append({"name": "ci", "context": {"cluster": "here", "user": "robot"}})
    (tmp_path / "config").write_text(json.dumps(config))
    assert kube_client.connect(str(tmp_path / "config"), "ci", timeout=5).get("/version")
    assert api.requests[-1][1] == "Bearer from-file"


def test_a_missing_exec_command_is_refused_naming_the_user_and_the_install_hint(tmp_path):
    path = kubeconfig(tmp_path / "config", "https://eks.invalid", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws-iam-authenticator-not-here",
        "args": ["token", "-i", "prod"], "installHint": "Install aws-iam-authenticator:\n  brew install it"}})
    with pytest.raises(BadInput) as err:
        kube_client.check(str(path))
    assert "kubeconfig user deployer" in err.value.message and "aws-iam-authenticator-not-here" in err.value.message
    assert err.value.hint == "Install aws-iam-authenticator: brew install it" and err.value.exit_code == 2


def test_a_failing_exec_plugin_is_refused_with_its_own_words(tmp_path):
    plugin = tmp_path / "login"
    plugin.write_text("#!/bin/sh\necho 'error: SSO session expired, run aws sso login' >&2\nexit 1\n")
    plugin.chmod(0o755)
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:9", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})
    with pytest.raises(BadInput, match="its exec plugin .* failed: .*SSO session expired"):
        kube_client.connect(str(path))


@pytest.mark.parametrize("change, words", [
    (lambda c: c.update({"current-context": "nope"}), "no context 'nope'"),
    (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority": "missing-ca.pem"}),
     "kubeconfig cluster local: certificate-authority"),
    (lambda c: c["users"][0]["user"].update({"client-key": "/nonexistent/key.pem"}), "kubeconfig user deployer"),
    (lambda c: c["users"][0].update({"user": {"auth-provider": {"name": "gcp"}}}), "auth-provider 'gcp'"),
    (lambda c: c["users"][0].update({"user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1",
                                                       "command": "sh"}}}), "v1alpha1"),
])
def test_what_kubectl_could_not_use_either_is_refused_in_one_line(tmp_path, change, words):
    config = json.loads(kubeconfig(tmp_path / "config", "https://127.0.0.1:6443", {"token": "t"}).read_text())
    change(config)
    with pytest.raises(BadInput) as err:
        kube_client.check(json.dumps(config))
    assert words in err.value.message and "\n" not in err.value.message


def test_inline_certificates_are_read_and_the_server_named(tmp_path):
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    config = json.loads(kubeconfig(tmp_path / "config", "https://127.0.0.1:6443/", {
        "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}).read_text())
    login = kube_client.check(json.dumps(config))
    assert (login.server, login.user_name, login.context) == ("https://127.0.0.1:6443", "deployer", "test")


def test_403_names_the_verb_and_resource_and_401_and_no_answer_say_could_not_look(api, tmp_path):
    api.tokens = {"t"}
    api.forbidden = {("list", "pods")}
    client = kube_client.connect(str(kubeconfig(tmp_path / "config", api.url, {"token": "t"})), timeout=5)
    with pytest.raises(kube_client.KubeError) as err:
        client.get("/api/v1/namespaces/shop/pods", {"labelSelector": "a=b"})
    assert 'cannot list resource "pods"' in err.value.message and "kubeconfig user deployer" in err.value.message
    assert "dockyard-deployer.yaml" in err.value.hint and err.value.exit_code == 1
    wrong = kube_client.connect(str(kubeconfig(tmp_path / "other", api.url, {"token": "expired"})), timeout=5)
    with pytest.raises(kube_client.KubeError, match="401 Unauthorized"):
        wrong.get("/version")
    api.close()
    with pytest.raises(kube_client.KubeError, match="could not reach the API server"):
        client.get("/version")


def test_the_library_is_imported_only_when_a_cluster_is_asked():
    import subprocess
    import sys

    code = ("import sys\nfrom dockyard.release import cli\nimport dockyard.targets.kubernetes.target, "
            "dockyard.targets.kubernetes.verify\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "[]"
