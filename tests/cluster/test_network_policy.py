"""The project's own NetworkPolicies, enforced for real on the live cluster (the private cluster's agent).

One small app (web, routed, plus the stack's worker as a client) is deployed from the project's
manifests for a base stack and for one of its branch stacks, beside an ingress controller's
namespace named by `kubernetes.ingressFrom`. Client pods ask the web Service for /healthz from
inside the cluster; what they get is the agent's doing, not dockyard's.
"""

from __future__ import annotations

import uuid

import pytest

from dockyard.targets.kubernetes import manifests
from tests.cluster import netpol
from tests.cluster.conftest import kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

CONTROLLER = {"app.kubernetes.io/name": "ingress-nginx"}


class App:
    """Base stack `dev` and branch stack `branch-np` of one app, their client pods, and an ingress namespace."""

    def __init__(self, workdir) -> None:
        self.base_ns = f"dkp-{uuid.uuid4().hex[:8]}"
        self.ingress_ns = f"{self.base_ns}-ingress"
        ingress_from = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ingress_ns}},
                         "podSelector": {"matchLabels": CONTROLLER}}]
        self.base = netpol.settings("dev", self.base_ns, ingress_from)
        self.branch = netpol.settings("branch-np", self.base_ns, ingress_from)
        self.branch_ns = netpol.context(self.branch).namespace
        assert self.branch_ns != self.base_ns
        self.workdir = workdir

    @property
    def namespaces(self) -> tuple[str, ...]:
        return self.base_ns, self.branch_ns, self.ingress_ns

    def deploy(self, image: str) -> None:
        objects = [netpol.plain_namespace(self.ingress_ns)]
        for app in (self.base, self.branch):
            ctx = netpol.context(app)
            objects += [manifests.namespace(ctx.namespace), *manifests.service_objects(app.services["web"], ctx, image)]
        worker = self.base.services["worker"]
        self.pods = {
            # name -> (namespace, labels)
            "app": (self.base_ns, manifests.labels(worker, netpol.context(self.base))),
            "stranger": (self.base_ns, {"app": "stranger"}),
            "controller": (self.ingress_ns, CONTROLLER),
            "bystander": (self.ingress_ns, {"app": "bystander"}),
            "branch-app": (self.branch_ns, manifests.labels(worker, netpol.context(self.branch))),
        }
        objects += [netpol.client_pod(name, ns, labels, self.base, image) for name, (ns, labels) in self.pods.items()]
        netpol.apply(objects, self.workdir)
        for ns in (self.base_ns, self.branch_ns):
            netpol.ready(ns, "deployment/web", "rollout", "status", "deployment/web", "-n", ns, "--timeout=180s")
        for name, (ns, _) in self.pods.items():
            netpol.ready(ns, f"pod/{name}", "wait", "--for=condition=Ready", f"pod/{name}", "-n", ns,
                         "--timeout=120s")
        self.base_ip = netpol.service_ip(self.base_ns, "web")
        self.branch_ip = netpol.service_ip(self.branch_ns, "web")

    def ask(self, pod: str, ip: str, admitted: bool) -> str:
        ns, _ = self.pods[pod]
        return netpol.wait_until(ns, pod, ip, admitted)

    def refused(self, pod: str, ip: str) -> list[str]:
        ns, _ = self.pods[pod]
        return netpol.refused_every_time(ns, pod, ip)

    def policy(self, namespace: str) -> dict:
        ctx = netpol.context(self.base if namespace == self.base_ns else self.branch)
        return manifests.network_policy(self.base.services["web"], ctx)


@pytest.fixture(scope="module")
def app(kubeconfig, images, tmp_path_factory):
    netpol.require_enforcing_agent()
    image = images.web("ok")
    with netpol.agent_lock(exclusive=False):
        deployed = App(tmp_path_factory.mktemp("netpol"))
        try:
            deployed.deploy(image)
            # Enforced once the agent has the web pod and its policy: a stranger is refused.
            assert deployed.ask("stranger", deployed.base_ip, admitted=False) != "200", \
                "the web Service of the base stack still admits a stranger after 30s: NetworkPolicy not enforced"
            yield deployed
        finally:
            netpol.delete_namespaces(*deployed.namespaces)


def test_a_pod_of_the_stack_reaches_its_service_and_a_pod_without_its_labels_is_refused(app):
    assert app.ask("app", app.base_ip, admitted=True) == "200"
    answers = app.refused("stranger", app.base_ip)
    assert "200" not in answers, answers
    # The refusal is the policy's: without it the same pod gets through, and with it back it does not.
    kubectl("delete", "networkpolicy", "web", "-n", app.base_ns)
    try:
        assert app.ask("stranger", app.base_ip, admitted=True) == "200"
    finally:
        netpol.apply([app.policy(app.base_ns)], app.workdir)
    assert app.ask("stranger", app.base_ip, admitted=False) != "200"


def test_the_configured_ingress_peers_are_admitted_and_other_pods_of_their_namespace_are_refused(app):
    assert app.ask("controller", app.base_ip, admitted=True) == "200"
    assert app.ask("controller", app.branch_ip, admitted=True) == "200"  # a branch serves through it too
    answers = app.refused("bystander", app.base_ip)
    assert "200" not in answers, answers


def test_a_branch_stacks_pods_and_the_base_stacks_pods_refuse_each_other(app):
    # Each stack's own pods reach its own service ...
    assert app.ask("branch-app", app.branch_ip, admitted=True) == "200"
    assert app.ask("app", app.base_ip, admitted=True) == "200"
    # ... and not the other stack's: a branch is a namespace of its own, and the policy admits
    # `part-of: dockyard` pods of its own namespace only.
    answers = app.refused("branch-app", app.base_ip) + app.refused("app", app.branch_ip)
    assert "200" not in answers, answers
