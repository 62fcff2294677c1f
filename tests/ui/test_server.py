"""The dashboard served by uvicorn on loopback, asked over real HTTP: pages, data, guards, secrets."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import yaml

from dockyard.release.ui import views
from dockyard.release.ui.web import create_app
from tests.ui.conftest import BRANCH_URL, dashboards, serve

PAGES = ["", "index.html", "history.html", "branches.html", "metrics.html"]


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


class Links(HTMLParser):
    """Every address a page makes the browser load or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []  # script src, link href, img src
        self.anchors: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.loads.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.anchors.append(attrs["href"])


def test_every_page_and_the_data_are_served_with_a_policy_that_allows_only_this_server(served):
    for page in PAGES:
        status, headers, body = get(served.url + page)
        assert status == 200, page
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
        links = Links()
        links.feed(body.decode())
        assert links.loads and all(not re.match(r"^[a-z]+:|^//", src) for src in links.loads), links.loads
        # Anchors stay on the page's own server too, except a branch preview's own URL.
        assert all(not re.match(r"^[a-z]+:|^//", a) or a == BRANCH_URL for a in links.anchors), links.anchors
        for src in links.loads:
            assert get(served.url + src)[0] == 200, src
    status, _, body = get(served.url + "api/state.json")
    state = json.loads(body)
    assert status == 200 and [e["name"] for e in state["environments"]] == ["dev", "prod"]
    assert json.loads(get(served.url + "api/version.json")[2])["version"] == state["version"]


def test_the_static_files_ask_for_nothing_outside_the_server():
    for item in views.STATIC.iterdir():
        text = item.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), item.name
        assert "@import" not in text and "url(" not in text, item.name


def test_nothing_but_reading_is_answered(served):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert get(served.url + "index.html", method=method)[0] == 405
        assert get(served.url + "api/state.json", method=method)[0] == 405


def test_a_request_for_another_host_name_is_refused_on_loopback(served):
    # What a page on another site sees after pointing its own name at 127.0.0.1 (DNS rebinding).
    port = served.url.rsplit(":", 1)[1].strip("/")
    assert get(served.url + "api/state.json", headers={"Host": f"attacker.example:{port}"})[0] == 400
    assert get(served.url + "api/state.json", headers={"Host": f"localhost:{port}"})[0] == 200


def test_behind_a_token_nothing_is_served_without_it_and_the_token_leaves_the_address(told):
    running = serve(create_app(dashboards(told), token="s3cret-token", allowed_hosts=None))
    try:
        assert get(running.url + "index.html")[0] == 401
        assert get(running.url + "api/state.json")[0] == 401
        assert get(running.url + "api/state.json?token=wrong")[0] == 401
        status, headers, _ = get(running.url + "history.html?token=s3cret-token")
        assert status == 303 and headers["location"] == "/history.html"
        cookie = headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        value = cookie.split(";", 1)[0]
        assert get(running.url + "api/state.json", headers={"Cookie": value})[0] == 200
        assert get(running.url + "api/state.json", headers={"Cookie": "dockyard_ui_token=nope"})[0] == 401
    finally:
        running.stop()


SECRETS = {
    "kubeconfig": "apiVersion: v1\nclusters:\n- cluster:\n    server: https://k8s.internal.example:6443\n"
                  "    certificate-authority-data: S0VZLUZPUi1USEUtVEVTVA==\nusers:\n- user:\n"
                  "    token: kube-token-do-not-show-8f3a\n",
    "ciphertext": "v1:AAAABBBBencryptedKubeconfig+do+not+show==",
    "nomad": "v1:CCCCnomadTokenCiphertext+do+not+show==",
    "plain": "db-password-in-plain-env-do-not-show",
    "secret_ref": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db-do-not-show",
}


def test_no_secret_config_value_and_no_kubeconfig_reaches_the_page_or_its_data(told, monkeypatch, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(SECRETS["kubeconfig"])
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("NOMAD_TOKEN", "nomad-env-token-do-not-show")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-do-not-show")
    directory = told.project.dir
    # dev deploys to a cluster with its kubeconfig as a secret, prod carries plain environment and secrets.
    dev = yaml.safe_load((directory / "Pulumi.dev.yaml").read_text())
    dev["config"]["dockyard:target"] = "kubernetes"
    dev["config"]["dockyard:kubernetes"] = {"namespace": "shop-dev", "kubeconfig": {"secure": SECRETS["ciphertext"]}}
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    prod = yaml.safe_load((directory / "Pulumi.prod.yaml").read_text())
    prod["config"]["dockyard:services"] = {
        "web": {"port": 8080, "environment": {"DB_PASSWORD": SECRETS["plain"]},
                "secrets": {"DB_URL": SECRETS["secret_ref"]}}, "worker": {}}
    (directory / "Pulumi.prod.yaml").write_text(yaml.safe_dump(prod))
    nomad = {"dockyard:role": "app", "dockyard:imageSource": "file", "dockyard:target": "nomad",
             "dockyard:trust": "none", "dockyard:services": {"web": {"port": 8080}},
             "dockyard:nomad": {"renderDir": str(tmp_path / "nomad"), "token": {"secure": SECRETS["nomad"]}}}
    (directory / "Pulumi.nomad.yaml").write_text(yaml.safe_dump({"config": nomad}))
    running = serve(create_app(dashboards(told)))
    try:
        bodies = {page: get(running.url + page)[2].decode() for page in PAGES + ["api/state.json"]}
    finally:
        running.stop()
    state = json.loads(bodies["api/state.json"])
    assert {e["name"] for e in state["environments"]} == {"dev", "prod", "nomad"}  # the stacks were read
    assert next(e for e in state["environments"] if e["name"] == "dev")["target"] == "kubernetes"
    leaks = [value for value in [*SECRETS.values(), "kube-token-do-not-show-8f3a", "S0VZLUZPUi1USEUtVEVTVA==",
                                 "k8s.internal.example", "nomad-env-token-do-not-show", "aws-secret-do-not-show",
                                 "[secret]"]
             for body in bodies.values() if value in body]
    assert leaks == []
    exported = tmp_path / "export"
    from dockyard.release.ui.command import export

    export(told.context(), exported)
    for path in Path(exported).rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [v for v in SECRETS.values() if v in text], path
