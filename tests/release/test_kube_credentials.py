"""A Kubernetes environment's credentials: refused before `up` when they cannot be used, and a
verification that could not look (401, 403, no answer) leaves the release deployed, unverified,
and never rolls it back. The API server is a real HTTP server on 127.0.0.1 (tests/support/kube_api)
serving what the fake engine deployed."""

from __future__ import annotations

import pytest
import yaml

from dockyard.targets.kubernetes import client as kube_client
from tests.release.conftest import SERVICES, publish_registry
from tests.release.test_commands import seed
from tests.support.kube_api import KubeApi, deployment, exec_plugin, kubeconfig, plugin_runs, pod


@pytest.fixture
def kube(dockyard, tmp_path, monkeypatch):
    """prod deploys to Kubernetes (namespace shop-prod) through $KUBECONFIG; the API serves what runs."""
    path = dockyard.project.config_file("prod")
    data = yaml.safe_load(path.read_text())
    data["config"].update({"dockyard:target": "kubernetes", "dockyard:kubernetes": {"namespace": "shop-prod"}})
    data["config"].pop("aws:region", None)
    path.write_text(yaml.safe_dump(data))

    def objects(namespace: str, kind: str, name: str):
        running = (dockyard.engine.deployed.get("prod") or {}).get("images") or {}
        if namespace != "shop-prod":
            return None
        if kind == "deployments":
            return deployment(name) if name in running else None
        return {"items": [pod(f"{s}-0", s, ref) for s, ref in sorted(running.items())]}

    api = KubeApi(objects)
    kube_client._CLIENTS.clear()
    yield api
    api.close()
    kube_client._CLIENTS.clear()


def use(monkeypatch, path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(path))


def prod_verified_then_dev_moves_on(d) -> None:
    seed(d)
    code, out, err = d("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 0 and out["verified"], err
    publish_registry(d, "v2")
    d("promote", "dev", "--from", "registry", "--no-deploy", "--yes")


def test_an_exec_plugin_kubeconfig_drives_promote_and_rollback_to_verified(dockyard, kube, tmp_path, monkeypatch):
    kube.tokens = {"from-plugin"}
    plugin = exec_plugin(tmp_path, ["from-plugin"])
    use(monkeypatch, kubeconfig(tmp_path / "config", kube.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}}))
    prod_verified_then_dev_moves_on(dockyard)
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 0 and out["verified"] and out["version"] == 2, err
    code, out, err = dockyard("rollback", "prod", "--to", "1", "--yes", "--json")
    assert code == 0 and out["verified"], err
    # Every read of the pods went with the plugin's token; the plugin ran at most once per command.
    reads = [auth for path, auth in kube.requests if "/pods" in path]
    assert len(reads) >= 3 and set(reads) == {"Bearer from-plugin"}
    assert 1 <= len(plugin_runs(tmp_path)) <= 3
    _, status, _ = dockyard("status", "prod", "--json")
    prod = status["environments"]["prod"]
    assert (prod["deployed"], prod["knownGood"], prod["unverified"]) == (3, 3, False)


def test_a_kubeconfig_whose_exec_command_is_missing_is_refused_before_anything_changes(dockyard, kube, tmp_path,
                                                                                      monkeypatch):
    use(monkeypatch, kubeconfig(tmp_path / "good", kube.url, {"token": "t"}))
    prod_verified_then_dev_moves_on(dockyard)
    ups = list(dockyard.engine.ups)
    _, before, _ = dockyard("history", "prod", "--json")
    use(monkeypatch, kubeconfig(tmp_path / "eks", "https://eks.invalid", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws-iam-authenticator-missing",
        "installHint": "install aws-iam-authenticator"}}))
    kube_client._CLIENTS.clear()

    def refused(*args: str) -> None:
        code, out, err = dockyard(*args, "--json")
        assert code == 2 and out["error"]["code"] == "bad-input", err
        assert "kubeconfig user deployer" in out["error"]["message"]
        assert "aws-iam-authenticator-missing" in out["error"]["message"]
        assert out["error"]["hint"] == "install aws-iam-authenticator"

    refused("promote", "prod", "--from", "dev", "--unverified", "--yes")
    refused("deploy", "prod")
    assert dockyard("history", "prod", "--json")[1] == before  # no release written, no label moved
    assert dockyard("promote", "prod", "--from", "dev", "--unverified", "--no-deploy", "--yes")[0] == 0  # nothing to log in for
    _, before, _ = dockyard("history", "prod", "--json")
    refused("rollback", "prod", "--to", "1", "--yes")
    assert dockyard("history", "prod", "--json")[1] == before  # no rollback release, no hold
    assert dockyard.engine.ups == ups  # the engine's up never ran


@pytest.mark.parametrize("fault, words", [
    ("forbidden", 'cannot list resource "pods"'),
    ("expired", "401 Unauthorized"),
    ("unreachable", "could not reach the API server"),
])
def test_could_not_look_leaves_the_release_deployed_unverified_and_does_not_roll_back(dockyard, kube, tmp_path,
                                                                                     monkeypatch, fault, words):
    kube.tokens = {"t"}
    use(monkeypatch, kubeconfig(tmp_path / "config", kube.url, {"token": "t"}))
    prod_verified_then_dev_moves_on(dockyard)
    if fault == "forbidden":
        kube.forbidden = {("list", "pods")}
    elif fault == "expired":
        kube.tokens = {"rotated"}
    else:
        kube.close()
    ups = len(dockyard.engine.ups)
    code, out, err = dockyard("promote", "prod", "--from", "dev", "--unverified", "--yes", "--json")
    assert code == 1 and out["error"]["code"] == "failed", err
    message = out["error"]["message"]
    assert words in message and "\n" not in message and "Traceback" not in err
    assert "rolled back" not in message and "failed verification" not in message
    assert len(dockyard.engine.ups) == ups + 1  # the release's own deploy, and no rollback deploy
    _, history, _ = dockyard("history", "prod", "--json")
    assert [r["version"] for r in history["releases"]] == [2, 1] and history["releases"][0]["rollback"] is None
    _, status, _ = dockyard("status", "prod", "--json")
    prod = status["environments"]["prod"]
    assert (prod["deployed"], prod["knownGood"], prod["held"], prod["unverified"]) == (2, 1, None, True)
    assert set(dockyard.engine.deployed["prod"]["images"]) == set(SERVICES)
