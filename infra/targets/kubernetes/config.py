"""Target kubernetes: its keys (`dockyard:kubernetes`, a database Secret) as the cluster spells them (pure)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ConfigError
from dockyard.validation import (HOSTNAME, LABEL_KEY, LABEL_VALUE, boolean, decode, fail, known_keys, mapping,
                                 matches, text)

KUBERNETES_KEYS = ("namespace", "createNamespace", "kubeconfig", "context", "renderDir",
                   "ingressClass", "ingressNamespace", "ingressFrom", "host", "tlsSecret")
_K8S_SECRET_REF = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/[-._a-zA-Z0-9]+$")


@dataclass(frozen=True)
class SecretDatabaseSettings:
    """Kubernetes: an existing Secret holding the connection settings."""

    secret_name: str
    # What a branch stack's pods get instead: never the base's own (master) credentials. None: a
    # branch runs without a database secret.
    branch_secret_name: str | None = None



@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str = "dockyard"
    create_namespace: bool = True
    kubeconfig: str | None = None  # secret: only ever handed to pulumi as a secret Output
    context: str | None = None
    render_dir: str | None = None
    ingress_class: str | None = None
    ingress_namespace: str = "ingress-nginx"  # where the ingress controller runs: the only outside caller
    # NetworkPolicy peers that may reach routed services (besides the stack's own pods): by
    # default the ingress namespace; ipBlocks for controllers on the host network.
    ingress_from: tuple[Mapping[str, Any], ...] = ()
    host: str | None = None
    tls_secret: str | None = None



def kubernetes(raw: Any, is_secret: bool) -> KubernetesSettings:
    entry = mapping("kubernetes", raw, default={}) or {}
    known_keys("kubernetes", entry, KUBERNETES_KEYS)
    kubeconfig = entry.get("kubeconfig")
    if kubeconfig is not None:
        if not is_secret:
            raise ConfigError("dockyard:kubernetes.kubeconfig is stored in plain text; it holds credentials",
                              hint="pulumi config set --secret --path 'dockyard:kubernetes.kubeconfig' "
                                   "\"$(cat ~/.kube/config)\"")
        kubeconfig = text("kubernetes.kubeconfig", kubeconfig)
    render_dir = entry.get("renderDir")
    if render_dir is not None and kubeconfig is not None:
        raise ConfigError("dockyard:kubernetes: set either kubeconfig (deploy to a cluster) or renderDir "
                          "(write manifests for GitOps), not both")
    if "ingressFrom" in entry and "ingressNamespace" in entry:
        raise ConfigError("dockyard:kubernetes: set either ingressNamespace or ingressFrom (which replaces it), "
                          "not both")
    ingress_namespace = matches("kubernetes.ingressNamespace", entry.get("ingressNamespace", "ingress-nginx"),
                               re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "a namespace name")
    ingress_from = (_ingress_from(entry["ingressFrom"]) if "ingressFrom" in entry else
                    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}}},))
    namespace = matches("kubernetes.namespace", entry.get("namespace", "dockyard"),
                       re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "a DNS label, at most 63 characters")
    return KubernetesSettings(
        namespace=namespace,
        create_namespace=boolean("kubernetes.createNamespace", entry.get("createNamespace", True)),
        kubeconfig=kubeconfig,
        context=None if entry.get("context") is None else text("kubernetes.context", entry["context"]),
        render_dir=None if render_dir is None else text("kubernetes.renderDir", render_dir),
        ingress_class=matches("kubernetes.ingressClass", entry.get("ingressClass"),
                             re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"), "an IngressClass name like nginx"),
        ingress_namespace=ingress_namespace,
        ingress_from=ingress_from,
        host=matches("kubernetes.host", entry.get("host"), HOSTNAME, "a lowercase host name like app.example.com"),
        tls_secret=matches("kubernetes.tlsSecret", entry.get("tlsSecret"),
                          re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"), "the name of a TLS Secret"),
    )


def _ingress_from(raw: Any) -> tuple[dict[str, Any], ...]:
    """NetworkPolicy peers, as Kubernetes spells them: an ipBlock, or a namespace and/or pod selector."""
    path = "kubernetes.ingressFrom"
    value = decode(path, raw)
    if not isinstance(value, list) or not value:
        raise fail(path, value, "a list of peers, each {ipBlock: {cidr: ...}} or "
                                 "{namespaceSelector: {matchLabels: ...}} and/or {podSelector: ...}")
    peers = []
    for i, peer in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(peer, dict):
            raise fail(p, peer, "an object with ipBlock, or namespaceSelector and/or podSelector")
        known_keys(p, peer, ("ipBlock", "namespaceSelector", "podSelector"))
        if not peer:
            raise fail(p, peer, "one of ipBlock, namespaceSelector, podSelector")
        if "ipBlock" in peer:
            if len(peer) > 1:
                raise ConfigError(f"dockyard:{p}: ipBlock cannot be combined with namespaceSelector or podSelector")
            peers.append({"ipBlock": _ip_block(f"{p}.ipBlock", peer["ipBlock"])})
        else:
            peers.append({kind: _selector(f"{p}.{kind}", selector) for kind, selector in peer.items()})
    return tuple(peers)


def _cidr(path: str, value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        return ipaddress.ip_network(value)
    except ValueError:
        raise fail(path, value, "a CIDR like 10.0.0.0/16 or fd00::/8") from None


def _ip_block(path: str, raw: Any) -> dict[str, Any]:
    block = mapping(path, raw, default=None)
    if block is None:
        raise fail(path, raw, "an object with cidr and optionally except")
    known_keys(path, block, ("cidr", "except"))
    network = _cidr(f"{path}.cidr", block.get("cidr"))
    result: dict[str, Any] = {"cidr": str(network)}
    if "except" in block:
        excepted = block["except"]
        if not isinstance(excepted, list):
            raise fail(f"{path}.except", excepted, f"a list of CIDRs inside {network}")
        for j, item in enumerate(excepted):
            inner = _cidr(f"{path}.except[{j}]", item)
            if inner.version != network.version or not inner.subnet_of(network):  # type: ignore[arg-type]
                raise fail(f"{path}.except[{j}]", item, f"a CIDR inside {network}")
        result["except"] = [str(_cidr(path, item)) for item in excepted]
    return result


def _selector(path: str, raw: Any) -> dict[str, Any]:
    """A label selector by matchLabels; `{}` selects everything (every namespace, every pod)."""
    selector = mapping(path, raw, default=None)
    if selector is None:
        raise fail(path, raw, "an object like {matchLabels: {team: edge}}")
    known_keys(path, selector, ("matchLabels",))
    if "matchLabels" not in selector:
        return {}
    labels = mapping(f"{path}.matchLabels", selector["matchLabels"], default={}) or {}
    for key, label in labels.items():
        if not LABEL_KEY.match(key):
            raise fail(f"{path}.matchLabels.{key}", key, "a label key like team or kubernetes.io/metadata.name")
        if not isinstance(label, str) or not LABEL_VALUE.match(label):
            raise fail(f"{path}.matchLabels.{key}", label,
                        "a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending "
                        "with a letter or digit")
    return {"matchLabels": dict(labels)}




def secret_reference(path: str, ref: str) -> None:
    matches(path, ref, _K8S_SECRET_REF, "a key of a Kubernetes Secret, <secret-name>/<key>")


def database(value: Any, share_from: str | None) -> SecretDatabaseSettings | None:
    """`dockyard:database` (decoded): an existing Secret with the connection settings, or none."""
    if value is None or value is False:
        return None
    entry = mapping("database", value, default=None)
    known_keys("database", entry, ("secretName", "branchSecretName"))
    secret = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    return SecretDatabaseSettings(
        secret_name=matches("database.secretName", entry.get("secretName"), secret,
                            "the name of an existing Kubernetes Secret"),
        branch_secret_name=matches("database.branchSecretName", entry.get("branchSecretName"), secret,
                                   "the name of an existing Kubernetes Secret in the base's namespace"))


def check_branch_host(settings: Any) -> None:
    """A branch stack's Ingress needs a host of its own, or it would take the base's routes."""
    from dockyard import naming

    if not naming.is_branch_stack(settings.stack) or settings.kubernetes.host is not None:
        return
    hostless = sorted(s.name for s in settings.services.values() if s.routed and s.host is None)
    if hostless:
        raise ConfigError(
            f"dockyard:kubernetes.host: a branch stack's Ingress needs a host, or {', '.join(hostless)} "
            "would take the base's routes; set kubernetes.host on the base (a branch serves "
            f"{settings.stack}.<host>, so a wildcard DNS record *.<host> serves every branch)")
