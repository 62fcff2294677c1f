"""Live verification on Kubernetes, against an API that answers as a cluster would (no cluster needed)."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard import config
from dockyard.targets.kubernetes import verify as kube_verify
from dockyard.targets.checks import VerificationFailed

GOOD = "sha256:" + "a" * 64
BAD = "sha256:" + "b" * 64
WANTED = {"web": f"127.0.0.1:5000/shop/web@{GOOD}"}


def settings() -> config.AppSettings:
    return config.load({"dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
                        "dockyard:services": json.dumps({"web": {"port": 8080, "desiredCount": 2}})},
                       stack="dev", secret_keys=set(), discovered_services=["web"])


class FakeApi:
    """Deployment `web` with `replicas` pods, each running the digest in `pods` (None: not ready)."""

    def __init__(self, pods: list[str | None], *, generation: int = 2, observed: int = 2,
                 waiting: str | None = None, health: int = 200, conditions: list | None = None) -> None:
        self.pods, self.generation, self.observed, self.waiting, self.health = pods, generation, observed, waiting, health
        self.conditions = conditions or []
        self.requests: list[str] = []

    def get(self, path: str) -> dict:
        self.requests.append(path)
        ready = sum(1 for p in self.pods if p == GOOD)
        if path.endswith("/deployments/web"):
            return {"metadata": {"generation": self.generation},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}},
                    "status": {"observedGeneration": self.observed, "updatedReplicas": ready,
                               "availableReplicas": ready, "replicas": len(self.pods),
                               "conditions": self.conditions}}
        assert "/pods?labelSelector=" in path
        items = []
        for i, digest in enumerate(self.pods):
            state = {"waiting": {"reason": self.waiting}} if self.waiting and digest is None else {"running": {}}
            items.append({"metadata": {"name": f"web-{i}"}, "spec": {"containers": [{"name": "web",
                                                                                    "image": WANTED["web"]}]},
                          "status": {"conditions": [{"type": "Ready", "status": "True" if digest else "False"}],
                                     "containerStatuses": [{"name": "web", "state": state,
                                                            "imageID": f"127.0.0.1:5000/shop/web@{digest or GOOD}"}]}})
        return {"items": items}

    def request(self, path: str, accept: str = "") -> tuple[int, bytes]:
        self.requests.append(path)
        return self.health, json.dumps({"commit": "c0ffee"}).encode()


def test_all_pods_on_the_wanted_digest_pass_and_health_goes_through_the_service_proxy():
    api = FakeApi([GOOD, GOOD])
    lines: list[str] = []
    versions = kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=5, log=lines.append,
                                       sleep=lambda _: None)
    assert versions == {"web": "c0ffee"}
    assert "/api/v1/namespaces/shop-dev/services/web:http/proxy/healthz" in api.requests
    assert "/api/v1/namespaces/shop-dev/services/web:http/proxy/version" in api.requests
    assert any("2/2 pods on sha256:aaaa" in line for line in lines)


def test_a_ready_pod_on_another_digest_fails_naming_service_found_and_wanted():
    api = FakeApi([GOOD, BAD])
    with pytest.raises(VerificationFailed) as err:
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=0, sleep=lambda _: None)
    assert "web in shop-dev" in err.value.message
    assert f"found {BAD}" in err.value.message and f"wanted {GOOD[:19]}" in err.value.message


def test_an_old_generation_is_not_rolled_out_even_when_pods_match():
    api = FakeApi([GOOD, GOOD], generation=3, observed=2)
    with pytest.raises(VerificationFailed, match="not rolled out"):
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=0, sleep=lambda _: None)


def test_a_crash_looping_pod_of_the_wanted_image_fails_at_once():
    api = FakeApi([GOOD, None], waiting="CrashLoopBackOff")
    with pytest.raises(VerificationFailed, match="CrashLoopBackOff"):
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=3600, sleep=lambda _: None)


def test_pods_refused_by_admission_fail_at_once_with_the_api_servers_reason():
    refused = 'pods "web-1" is forbidden: violates PodSecurity "restricted:latest": hostNetwork=true'
    api = FakeApi([], conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": refused}])
    with pytest.raises(VerificationFailed) as err:
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=3600, sleep=lambda _: None)
    assert refused in err.value.message and "\n" not in err.value.message


def test_health_that_never_answers_fails_with_the_status():
    api = FakeApi([GOOD, GOOD], health=503)
    with pytest.raises(VerificationFailed, match="does not answer /healthz"):
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=0, sleep=lambda _: None)


def test_kubeconfig_current_context_with_inline_certificates_and_token(tmp_path):
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    text = f"""
apiVersion: v1
clusters:
- name: a
  cluster: {{server: "https://127.0.0.1:6443/", certificate-authority-data: {b64("CA")}}}
- name: b
  cluster: {{server: "https://other:6443"}}
users:
- name: admin
  user: {{client-certificate-data: {b64("CERT")}, client-key-data: {b64("KEY")}}}
- name: robot
  user: {{token: t0k}}
contexts:
- {{name: one, context: {{cluster: a, user: admin}}}}
- {{name: two, context: {{cluster: b, user: robot}}}}
current-context: one
"""
    one = kube_verify.KubeConfig.parse(text)
    assert (one.server, one.ca, one.cert, one.key) == ("https://127.0.0.1:6443", b"CA", b"CERT", b"KEY")
    two = kube_verify.KubeConfig.parse(text, "two")
    assert (two.server, two.token) == ("https://other:6443", "t0k")
    path = tmp_path / "config"
    path.write_text(text)
    assert kube_verify.KubeConfig.parse(str(path)).server == "https://127.0.0.1:6443"


def test_the_demo_renders_without_a_cluster_and_says_why(tmp_path):
    from dockyard.release.commands.demo import app_config, live_cluster

    assert live_cluster({})[0] is None and "KUBECONFIG is not set" in live_cluster({})[1]
    missing = live_cluster({"KUBECONFIG": str(tmp_path / "none")})
    assert missing[0] is None and "does not exist" in missing[1]
    assert "renderDir" in app_config(tmp_path, "dev")["dockyard:kubernetes"]
    live = app_config(tmp_path, "prod", live=True)["dockyard:kubernetes"]
    assert "renderDir" not in live and live["namespace"] == "shop-prod"
