"""Live verification on Kubernetes, against an API that answers as a cluster would (no cluster needed)."""

from __future__ import annotations

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
                 waiting: str | None = None, conditions: list | None = None) -> None:
        self.pods, self.generation, self.observed, self.waiting = pods, generation, observed, waiting
        self.conditions = conditions or []
        self.requests: list[str] = []

    def get(self, path: str, query: dict | None = None) -> dict:
        self.requests.append(path + (f"?labelSelector={query['labelSelector']}" if query else ""))
        ready = sum(1 for p in self.pods if p == GOOD)
        if path.endswith("/deployments/web"):
            return {"metadata": {"generation": self.generation},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}},
                    "status": {"observedGeneration": self.observed, "updatedReplicas": ready,
                               "availableReplicas": ready, "replicas": len(self.pods),
                               "conditions": self.conditions}}
        assert path.endswith("/pods") and query == {"labelSelector": "app.kubernetes.io/name=web"}
        items = []
        for i, digest in enumerate(self.pods):
            state = {"waiting": {"reason": self.waiting}} if self.waiting and digest is None else {"running": {}}
            items.append({"metadata": {"name": f"web-{i}"}, "spec": {"containers": [{"name": "web",
                                                                                    "image": WANTED["web"]}]},
                          "status": {"conditions": [{"type": "Ready", "status": "True" if digest else "False"}],
                                     "containerStatuses": [{"name": "web", "state": state,
                                                            "imageID": f"127.0.0.1:5000/shop/web@{digest or GOOD}"}]}})
        return {"items": items}


def test_all_pods_ready_on_the_wanted_digest_pass_without_any_path_to_the_pods():
    api = FakeApi([GOOD, GOOD])
    lines: list[str] = []
    verified = kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=5, log=lines.append,
                                       sleep=lambda _: None)
    assert verified == {"web": GOOD}
    # Only the Deployment and its pods are read; nothing goes through the API server's service proxy.
    assert all("/proxy" not in path for path in api.requests)
    assert {p.split("?")[0] for p in api.requests} == {"/apis/apps/v1/namespaces/shop-dev/deployments/web",
                                                       "/api/v1/namespaces/shop-dev/pods"}
    assert any("2/2 pods ready on sha256:aaaa" in line for line in lines)


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


def test_pods_whose_readiness_never_passes_fail_naming_the_health_check():
    api = FakeApi([None, None])
    with pytest.raises(VerificationFailed) as err:
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=0, sleep=lambda _: None)
    assert "readiness probe /healthz not passing" in err.value.message and "no ready pod" in err.value.message


def test_the_demo_renders_without_a_cluster_and_says_why(tmp_path):
    from dockyard.release.commands.demo import app_config, live_cluster

    assert live_cluster({})[0] is None and "KUBECONFIG is not set" in live_cluster({})[1]
    missing = live_cluster({"KUBECONFIG": str(tmp_path / "none")})
    assert missing[0] is None and "does not exist" in missing[1]
    assert "renderDir" in app_config(tmp_path, "dev")["dockyard:kubernetes"]
    live = app_config(tmp_path, "prod", live=True)["dockyard:kubernetes"]
    assert "renderDir" not in live and live["namespace"] == "shop-prod"


# A fix promoted over a stuck rollout, as the API server reports it read after read: the controller
# has not yet observed generation 3, so the deadline it reports is generation 2's.
STUCK_BEFORE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-6b7c9" has timed out progressing.'}
REFUSED_BEFORE = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                  "message": 'pods "web-6b7c9-x" is forbidden: violates PodSecurity "restricted:latest"'}
UPDATED = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "updated"}
AVAILABLE = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "done"}
OLD = f"127.0.0.1:5000/shop/web@sha256:{'0' * 64}"


class Recorded:
    """Answers successive reads with the next recorded (Deployment, pods); the last one repeats."""

    def __init__(self, frames: list[tuple[dict, list[dict]]]) -> None:
        self.frames, self.reads = frames, 0

    def get(self, path: str, query: dict | None = None) -> dict:
        deployment, pods = self.frames[min(self.reads // 2, len(self.frames) - 1)]
        self.reads += 1
        return deployment if "/deployments/" in path else {"items": pods}


def test_a_stale_progress_deadline_of_an_earlier_generation_does_not_fail_a_good_release():
    from tests.support.kube_api import deployment, pod

    new = WANTED["web"]
    api = Recorded([
        (deployment("web", generation=3, observed=2, ready=1, conditions=[STUCK_BEFORE, REFUSED_BEFORE]),
         [pod("web-old", "web", OLD)]),
        (deployment("web", generation=3, observed=3, ready=0, conditions=[UPDATED]),
         [pod("web-old", "web", OLD), pod("web-new", "web", new, ready=False)]),
        (deployment("web", generation=3, observed=3, ready=1, conditions=[AVAILABLE]), [pod("web-new", "web", new)]),
    ])
    verified = kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=3600, sleep=lambda _: None)
    assert verified == {"web": GOOD} and api.reads >= 6


def test_a_progress_deadline_of_the_observed_generation_fails_at_once():
    from tests.support.kube_api import deployment, pod

    api = Recorded([(deployment("web", generation=3, observed=3, ready=0, conditions=[STUCK_BEFORE]),
                     [pod("web-new", "web", WANTED["web"], ready=False)])])
    with pytest.raises(VerificationFailed, match="rollout exceeded its deadline"):
        kube_verify.verify_live(api, settings(), "shop-dev", WANTED, timeout=3600, sleep=lambda _: None)
