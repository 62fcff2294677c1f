"""The app stack on Kubernetes under mocks, its manifests against the Kubernetes schema and the
restricted Pod Security Standard."""

from __future__ import annotations

import copy
import json

import kubernetes_validate
import pulumi
import pytest

from dockyard.targets.kubernetes import manifests
from dockyard.targets.kubernetes.pod_security import restricted_violations
from dockyard.config import ServiceSettings
from tests.support.pulumi_harness import DockyardMocks
from tests.unit.app_fixtures import IMAGES, REGISTRY, SERVICES, app, manifest

K8S_VERSION = "1.37.0"
PER_SERVICE = {"ServiceAccount", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy"}
ROUTED_EXTRA = {"Service", "Ingress", "PodDisruptionBudget"}


def kube(stack: str = "dev", **config):
    config.setdefault("dockyard:target", "kubernetes")
    config.setdefault("dockyard:kubernetes", {"renderDir": "rendered/dev", "ingressClass": "nginx",
                                              "host": "dev.example.com"})
    return app(stack, **config)


def objects(run) -> list[dict]:
    """Registered Kubernetes objects as manifests (numbers back to ints, as the engine sends them)."""
    found = []
    for r in run.resources:
        if r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:"):
            found.append(json.loads(json.dumps(r.inputs), parse_float=lambda f: int(float(f))
                                    if float(f).is_integer() else float(f)))
    return found


def by_kind(run, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(run) if o["kind"] == kind}


def test_registers_every_object_per_service_with_the_source_digest_and_nothing_from_aws():
    run = kube()
    kinds_per_service: dict[str, set[str]] = {}
    for obj in objects(run):
        if obj["kind"] != "Namespace":
            kinds_per_service.setdefault(obj["metadata"]["name"], set()).add(obj["kind"])
    assert kinds_per_service == {"web": PER_SERVICE | ROUTED_EXTRA, "worker": PER_SERVICE}
    assert not [t for t in run.types() if t.startswith("aws:") or t.startswith("docker:")]
    deployments = by_kind(run, "Deployment")
    assert {n: d["spec"]["template"]["spec"]["containers"][0]["image"] for n, d in deployments.items()} == IMAGES
    assert deployments["web"]["metadata"]["annotations"][manifests.RELEASE_ANNOTATION] == "stack:latest"
    assert run.outputs["images"] == IMAGES


def test_deployment_shape():
    web = by_kind(kube(), "Deployment")["web"]
    spec = web["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert container["resources"]["limits"]["memory"] == "512Mi"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert pod["automountServiceAccountToken"] is False
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "web" and labels["app.kubernetes.io/part-of"] == "dockyard"
    assert by_kind(kube(), "ServiceAccount")["web"]["automountServiceAccountToken"] is False
    worker = by_kind(kube(), "Deployment")["worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["exec"]["command"] == ["python", "worker.py", "--check"]


def test_service_ingress_autoscaler_and_network_policy():
    run = kube()
    assert by_kind(run, "Service")["web"]["spec"]["type"] == "ClusterIP"
    ingress = by_kind(run, "Ingress")["web"]["spec"]
    assert ingress["ingressClassName"] == "nginx" and ingress["rules"][0]["host"] == "dev.example.com"
    hpa = by_kind(run, "HorizontalPodAutoscaler")["web"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    policy = by_kind(run, "NetworkPolicy")["web"]["spec"]
    sources = policy["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in sources
    assert len(sources) == 2
    worker_sources = by_kind(run, "NetworkPolicy")["worker"]["spec"]["ingress"][0]["from"]
    assert all("namespaceSelector" not in s for s in worker_sources)
    assert run.outputs["services"]["web"] == "http://dev.example.com/"
    assert run.outputs["url"] == "http://dev.example.com/"


def test_namespace_enforces_restricted_and_can_be_left_to_the_cluster():
    (ns,) = by_kind(kube(), "Namespace").values()
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    run = kube(**{"dockyard:kubernetes": {"renderDir": "r", "createNamespace": False, "namespace": "apps"}})
    assert not by_kind(run, "Namespace")
    assert {o["metadata"]["namespace"] for o in objects(run)} == {"apps"}


def test_branch_stack_gets_its_own_namespace_within_63_characters():
    stack = "branch-" + "feature-" + "x" * 32
    run = kube(stack, **{"dockyard:ephemeral": True,
                         "dockyard:kubernetes": {"renderDir": "r", "namespace": "n" * 40, "createNamespace": False,
                                                 "host": "dev.example.com"}})
    (ns,) = by_kind(run, "Namespace")
    assert len(ns) <= 63 and ns.startswith("n" * 10)
    assert {o["metadata"].get("namespace") for o in objects(run) if o["kind"] != "Namespace"} == {ns}


def test_provider_renders_to_a_directory_or_uses_the_secret_kubeconfig():
    rendered = kube().one("pulumi:providers:kubernetes").inputs
    assert rendered["renderYamlToDirectory"].endswith("/rendered/dev")
    live = kube(secret_keys=("dockyard:kubernetes",),
                **{"dockyard:kubernetes": {"kubeconfig": "apiVersion: v1\nkind: Config", "context": "prod"}})
    provider = live.one("pulumi:providers:kubernetes").inputs
    assert provider["kubeconfig"].startswith("apiVersion") and provider["context"] == "prod"
    assert "renderYamlToDirectory" not in provider


def test_database_secret_and_service_secrets_reach_the_pod():
    run = kube(**{"dockyard:database": {"secretName": "orders-db"},
                  "dockyard:services": {**SERVICES, "web": {"port": 8080, "secrets": {"API_TOKEN": "api/token"}}}})
    container = by_kind(run, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "orders-db"}}]
    assert {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}} in container["env"]


def test_unpinned_reference_is_refused_on_kubernetes_too():
    mocks = DockyardMocks(parameters={"/dockyard/prod/release": (manifest({**IMAGES, "web": "web:latest"}), 4)})
    with pytest.raises(pulumi.RunError, match="web:latest has no digest"):
        kube("prod", mocks=mocks, **{"dockyard:imageSource": "ssm"})
    assert mocks.created == []


def test_ssm_release_version_is_annotated():
    mocks = DockyardMocks(parameters={"/dockyard/prod/release": (manifest(), 9)})
    run = kube("prod", mocks=mocks, **{"dockyard:imageSource": "ssm"})
    assert by_kind(run, "Deployment")["web"]["metadata"]["annotations"][manifests.RELEASE_ANNOTATION] == "ssm:9"


# ----------------------------------------------------------------------------- schema and restricted


@pytest.mark.parametrize("config", [
    {},
    {"dockyard:kubernetes": {"renderDir": "r", "host": "a.example.com", "tlsSecret": "a-tls", "ingressClass": "nginx"}},
    {"dockyard:database": {"secretName": "db"}},
])
def test_every_registered_object_passes_the_strict_schema_and_restricted(config):
    run = kube(**config)
    objs = objects(run)
    assert len(objs) >= 12
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        if obj["kind"] == "Deployment":
            assert restricted_violations(obj["spec"]["template"]["spec"]) == []


def sample_service(**changes) -> ServiceSettings:
    base = dict(name="web", port=8080, cpu=512, memory=1024, desired_count=3, min_count=2, max_count=5,
                health_check_path="/healthz", health_check_command=None, path="/api/*", host="api.example.com",
                environment={"A": "1"}, secrets={"T": "s/k"})
    return ServiceSettings(**{**base, **changes})


CTX = manifests.ServiceContext(stack="prod", namespace="dockyard", release="ssm:3", ingress_class="nginx",
                               ingress_from=({"ipBlock": {"cidr": "10.0.0.0/16"}},), host=None, tls_secret="tls", database_secret="db")


def test_pure_manifests_pass_the_strict_schema():
    objs = manifests.service_objects(sample_service(), CTX, IMAGES["web"]) + [manifests.namespace("dockyard")]
    assert {o["kind"] for o in objs} == PER_SERVICE | ROUTED_EXTRA | {"Namespace"}
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_schema_validation_catches_a_wrong_field():
    bad = manifests.deployment(sample_service(), CTX, IMAGES["web"])
    bad["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def compliant_pod() -> dict:
    return manifests.pod_spec(sample_service(), CTX, IMAGES["web"])


def violate(path: str, value) -> dict:
    pod = copy.deepcopy(compliant_pod())
    *parents, leaf = path.split(".")
    node = pod
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[leaf] = value
    return pod


def test_compliant_pod_passes():
    assert restricted_violations(compliant_pod()) == []


@pytest.mark.parametrize("path, value, problem", [
    ("hostNetwork", True, "hostNetwork is true"),
    ("hostPID", True, "hostPID is true"),
    ("containers.0.securityContext.privileged", True, "is privileged"),
    ("containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation: false"),
    ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "drop ALL"),
    ("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "adds capabilities"),
    ("containers.0.securityContext.runAsNonRoot", False, "must run as non-root"),
    ("containers.0.securityContext.runAsUser", 0, "runAsUser is 0"),
    ("securityContext.runAsUser", 0, "pod runAsUser is 0"),
    ("containers.0.securityContext.seccompProfile", {"type": "Unconfined"}, "seccompProfile"),
    ("volumes", [{"name": "host", "hostPath": {"path": "/"}}], "uses hostPath"),
    ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort 80"),
])
def test_violating_pods_are_caught(path, value, problem):
    problems = restricted_violations(violate(path, value))
    assert any(problem in p for p in problems), problems


def test_pod_without_any_security_context_collects_every_violation():
    pod = {"containers": [{"name": "app", "image": "x"}]}
    assert len(restricted_violations(pod)) == 4


# ----------------------------------------------------------------------------- replicas belong to the autoscaler


def autoscaled(objs: list[dict]) -> set[tuple[str, str]]:
    """(namespace, Deployment name) of every Deployment an HPA scales."""
    return {(o["metadata"].get("namespace"), o["spec"]["scaleTargetRef"]["name"]) for o in objs
            if o["kind"] == "HorizontalPodAutoscaler" and o["spec"]["scaleTargetRef"]["kind"] == "Deployment"}


@pytest.mark.parametrize("stack, config", [
    ("dev", {}),
    ("prod", {"dockyard:services": {"web": {"port": 8080, "desiredCount": 3, "minCount": 3, "maxCount": 12},
                                    "worker": {"desiredCount": 2, "minCount": 1}}}),
])
def test_no_deployment_carries_replicas_beside_its_autoscaler(stack, config):
    objs = objects(kube(stack, **config))
    scaled = autoscaled(objs)
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    assert deployments and all((d["metadata"]["namespace"], d["metadata"]["name"]) in scaled for d in deployments)
    # A release applying spec.replicas would reset a scaled-out Deployment and fight the HPA.
    assert [d["metadata"]["name"] for d in deployments if "replicas" in d["spec"]] == []
    pure = manifests.service_objects(sample_service(), CTX, IMAGES["web"])
    assert autoscaled(pure) and all("replicas" not in o["spec"] for o in pure if o["kind"] == "Deployment")


# ----------------------------------------------------------------------------- platform


@pytest.mark.parametrize("platform, arch", [("linux/arm64", "arm64"), ("linux/amd64", "amd64"), (None, "amd64")])
def test_service_platform_reaches_the_node_selector(platform, arch):
    web = {"port": 8080, **({"platform": platform} if platform else {})}
    run = kube(**{"dockyard:services": {**SERVICES, "web": web}})
    deployments = by_kind(run, "Deployment")
    # An arm64 image scheduled on an amd64 node crashes with `exec format error`: pin the pods.
    assert deployments["web"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}
    assert deployments["worker"]["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/arch"] == "amd64"
    for obj in objects(run):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# ----------------------------------------------------------------------------- who may call a routed service


def test_network_policy_admits_the_configured_ingress_peers():
    peers = [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.9.0/24"]}},
             {"namespaceSelector": {"matchLabels": {"team": "edge"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}}}]
    run = kube(**{"dockyard:kubernetes": {"renderDir": "r", "host": "dev.example.com", "ingressFrom": peers}})
    policies = by_kind(run, "NetworkPolicy")
    sources = policies["web"]["spec"]["ingress"][0]["from"]
    # A host-network controller connects from the node's address, which no namespace selector matches.
    assert peers[0] in sources and peers[1] in sources
    assert not any(s.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                   for s in sources)
    assert all("ipBlock" not in s for s in policies["worker"]["spec"]["ingress"][0]["from"])
    for obj in policies.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# ----------------------------------------------------------------------------- branch stacks


class ClusterSecrets(DockyardMocks):
    """A cluster holding Secrets: reads of `kubernetes:core/v1:Secret` by `<namespace>/<name>` id."""

    def __init__(self, secrets: dict[str, dict[str, str]], **kwargs) -> None:
        super().__init__(stack_outputs={REGISTRY: {"images": {**IMAGES, "admin": ADMIN_IMAGE}}}, **kwargs)
        self.secrets = secrets  # "<namespace>/<name>" -> data
        self.reads: list[str] = []

    def new_resource(self, args):
        if args.typ == "kubernetes:core/v1:Secret" and args.resource_id:
            self.reads.append(args.resource_id)
            if args.resource_id not in self.secrets:
                raise Exception(f'secrets "{args.resource_id}" not found')
            namespace, name = args.resource_id.split("/")
            return args.resource_id, {"metadata": {"name": name, "namespace": namespace}, "type": "Opaque",
                                      "data": self.secrets[args.resource_id]}
        return super().new_resource(args)


BRANCH = "branch-feature-login"
ADMIN_IMAGE = IMAGES["web"].replace("/web@", "/admin@")
LIVE = {"kubeconfig": "apiVersion: v1\nkind: Config", "host": "dev.example.com", "tlsSecret": "dev-tls",
        "ingressClass": "nginx"}
WITH_SECRETS = {"web": {"port": 8080, "secrets": {"API_TOKEN": "api/token", "DATABASE_PASSWORD": "orders-db/password"}},
                "worker": {"healthCheckCommand": ["python", "worker.py", "--check"],
                           "secrets": {"QUEUE_URL": "queue/url"}},
                "admin": {"port": 8081, "host": "admin.example.com"}}
CLUSTER = {f"dockyard/{name}": {"k": "dg=="} for name in ("api", "queue", "dev-tls", "orders-db", "orders-db-preview")}


def live_kube(stack: str, database: dict, mocks: DockyardMocks):
    return kube(stack, mocks=mocks, secret_keys=("dockyard:kubernetes",), **{
        "dockyard:kubernetes": LIVE, "dockyard:services": WITH_SECRETS, "dockyard:database": database,
        **({"dockyard:ephemeral": True} if stack.startswith("branch-") else {})})


def referenced_secrets(objs: list[dict]) -> dict[str, set[str]]:
    """namespace -> names of the Secrets its pods and Ingresses read."""
    found: dict[str, set[str]] = {}
    for obj in objs:
        names: set[str] = set()
        if obj["kind"] == "Deployment":
            for c in obj["spec"]["template"]["spec"]["containers"]:
                names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if "valueFrom" in e}
                names |= {e["secretRef"]["name"] for e in c.get("envFrom", [])}
        if obj["kind"] == "Ingress":
            names |= {t["secretName"] for t in obj["spec"].get("tls", [])}
        if names:
            found.setdefault(obj["metadata"]["namespace"], set()).update(names)
    return found


def secrets_in(objs: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for obj in objs:
        if obj["kind"] == "Secret":
            found.setdefault(obj["metadata"]["namespace"], set()).add(obj["metadata"]["name"])
    return found


def test_branch_pods_find_every_secret_they_read_in_their_own_namespace_but_never_the_database_one():
    base_objs = objects(live_kube("dev", {"secretName": "orders-db"}, ClusterSecrets(CLUSTER)))
    assert referenced_secrets(base_objs) == {"dockyard": {"api", "queue", "dev-tls", "orders-db"}}
    mocks = ClusterSecrets(CLUSTER)
    objs = objects(live_kube(BRANCH, {"secretName": "orders-db"}, mocks))
    (namespace,) = {o["metadata"]["namespace"] for o in objs if o["kind"] == "Deployment"}
    assert namespace != "dockyard"
    wanted = referenced_secrets(objs)
    assert wanted == {namespace: {"api", "queue", "dev-tls"}}  # the database master secret is not handed out
    assert secrets_in(objs) == wanted
    assert sorted(mocks.reads) == ["dockyard/api", "dockyard/dev-tls", "dockyard/queue"]  # read from the base
    web = by_kind_in(objs, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in web and "DATABASE_PASSWORD" not in {e["name"] for e in web["env"]}


def test_branch_with_a_branch_database_secret_reads_that_one_instead():
    mocks = ClusterSecrets(CLUSTER)
    objs = objects(live_kube(BRANCH, {"secretName": "orders-db", "branchSecretName": "orders-db-preview"}, mocks))
    (namespace,) = referenced_secrets(objs)
    assert referenced_secrets(objs)[namespace] == {"api", "queue", "dev-tls", "orders-db-preview"}
    assert secrets_in(objs) == referenced_secrets(objs)
    assert "dockyard/orders-db" not in mocks.reads
    web = by_kind_in(objs, "Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["envFrom"] == [{"secretRef": {"name": "orders-db-preview"}}]
    assert {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-db-preview",
                                                                         "key": "password"}}} in web["env"]
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_base_stack_copies_no_secret():
    mocks = ClusterSecrets(CLUSTER)
    assert secrets_in(objects(live_kube("dev", {"secretName": "orders-db"}, mocks))) == {}
    assert mocks.reads == []


def test_rendered_branch_never_writes_secret_values():
    mocks = ClusterSecrets(CLUSTER)
    run = kube(BRANCH, mocks=mocks, **{"dockyard:ephemeral": True, "dockyard:services": WITH_SECRETS,
                                       "dockyard:kubernetes": {"renderDir": "r", "host": "dev.example.com"}})
    assert secrets_in(objects(run)) == {} and mocks.reads == []


def ingress_hosts(objs: list[dict]) -> set[tuple[str, str]]:
    return {(rule.get("host", "*"), path["path"]) for o in objs if o["kind"] == "Ingress"
            for rule in o["spec"]["rules"] for path in rule["http"]["paths"]}


def test_branch_ingress_never_takes_a_route_of_the_base():
    config = {"dockyard:services": {**WITH_SECRETS, "web": {"port": 8080}},
              "dockyard:kubernetes": {"renderDir": "r", "host": "dev.example.com", "tlsSecret": "dev-tls"}}
    base = kube("dev", mocks=ClusterSecrets({}), **config)
    branch = kube(BRANCH, mocks=ClusterSecrets({}), **{"dockyard:ephemeral": True, **config})
    base_routes, branch_routes = ingress_hosts(objects(base)), ingress_hosts(objects(branch))
    assert len(branch_routes) == len(base_routes) == 2
    assert not base_routes & branch_routes
    # `branch-<slug>.` before the base's host: one wildcard record (and certificate) per host serves every
    # branch, and the `branch-` label can never be another environment's host.
    assert {h for h, _ in branch_routes} == {f"{BRANCH}.dev.example.com", f"{BRANCH}.admin.example.com"}
    tls = {h for o in objects(branch) if o["kind"] == "Ingress" for t in o["spec"]["tls"] for h in t["hosts"]}
    assert tls == {h for h, _ in branch_routes}
    assert (branch.outputs["services"]["web"], branch.outputs["services"]["admin"]) == (
        f"https://{BRANCH}.dev.example.com/", f"https://{BRANCH}.admin.example.com/")


def by_kind_in(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_rendering_ignores_a_kubeconfig_in_the_environment(monkeypatch):
    # pulumi-kubernetes refuses a kubeconfig beside renderYamlToDirectory, and its SDK takes
    # $KUBECONFIG as the default: a user with a cluster configured must still be able to render.
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/config")
    rendered = kube().one("pulumi:providers:kubernetes").inputs
    assert rendered["renderYamlToDirectory"].endswith("/rendered/dev")
    assert not rendered.get("kubeconfig")
