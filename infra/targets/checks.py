"""After a deploy: check that what runs is what was wanted, and that it answers.

The engine reporting success is not enough: ECS's circuit breaker rolls a
failed deployment back and the provider still reports success.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from dockyard.config import AppSettings
from dockyard.errors import DockyardError


class VerificationFailed(DockyardError):
    """What runs is not what was wanted, or it does not answer its health check."""


def check_images(outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
    deployed = outputs.get("images") or {}
    wrong = {s: deployed.get(s) for s, ref in wanted.items() if deployed.get(s) != ref}
    if wrong:
        service, got = sorted(wrong.items())[0]
        raise VerificationFailed(f"the stack deployed {service} as {got}, not the wanted {wanted[service]}")


def check_ecs(outputs: Mapping[str, Any], ecs: Any) -> None:
    """Each service's PRIMARY deployment runs the stack's task definition and did not fail."""
    deployments = outputs.get("deployments") or {}
    by_cluster: dict[str, dict[str, str]] = {}
    for entry in deployments.values():
        by_cluster.setdefault(entry["cluster"], {})[entry["service"]] = entry["taskDefinition"]
    for cluster, services in by_cluster.items():
        names = sorted(services)
        described: dict[str, list] = {"services": [], "failures": []}
        for start in range(0, len(names), 10):  # DescribeServices takes at most 10 services
            page = ecs.describe_services(cluster=cluster, services=names[start:start + 10])
            described["services"] += page.get("services", [])
            described["failures"] += page.get("failures", [])
        for failure in described["failures"]:
            raise VerificationFailed(f"ECS service {failure.get('arn')} not found: {failure.get('reason')}")
        for service in described["services"]:
            wanted = services[service["serviceName"]]
            primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
            if primary is None or primary.get("taskDefinition") != wanted:
                running = primary.get("taskDefinition") if primary else "nothing"
                raise VerificationFailed(
                    f"ECS service {service['serviceName']} runs {running}, not {wanted}: the deployment circuit "
                    "breaker rolled it back", hint=f"see its events: aws ecs describe-services --cluster {cluster} "
                                                   f"--services {service['serviceName']}")
            if primary.get("rolloutState") == "FAILED":
                raise VerificationFailed(f"ECS service {service['serviceName']}: rollout failed: "
                                         f"{primary.get('rolloutStateReason', 'no reason given')}")


def check_rendered(render_dir: Path, wanted: Mapping[str, str]) -> None:
    """Rendered manifests (GitOps): each Deployment file carries the wanted image."""
    found: dict[str, str] = {}
    for path in render_dir.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                container = doc["spec"]["template"]["spec"]["containers"][0]
                found[doc["metadata"]["name"]] = container["image"]
    for service, ref in wanted.items():
        if found.get(service) != ref:
            raise VerificationFailed(f"rendered Deployment {service} in {render_dir} has image "
                                     f"{found.get(service)}, not {ref}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the stack's own URL
            return response.status, response.read(4096)
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (urllib.error.URLError, OSError) as err:
        return 0, str(err).encode()


def wait_healthy(what: str, url: str, *, timeout: float, get: Callable[[str], tuple[int, bytes]],
                 sleep: Callable[[float], None], interval: float) -> int:
    """GET `url` until it answers 2xx/3xx; its status, or a failed verification naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(url)
        if 200 <= status < 400:
            return status
        if time.monotonic() >= deadline:
            raise VerificationFailed(f"{what} did not answer {url} within {timeout:.0f}s "
                                     f"(last status {status or body.decode()[:80]})")
        sleep(interval)


def check_health(settings: AppSettings, outputs: Mapping[str, Any], *, timeout: float,
                 get: Callable[[str], tuple[int, bytes]] = http_get, sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """GET each routed service's health path (and /version, where it answers); service -> commit seen."""
    urls = outputs.get("services") or {}
    versions: dict[str, str] = {}
    for name, service in sorted(settings.services.items()):
        url = urls.get(name)
        # Only services that own their URL's root can be probed through it; path-routed ones
        # share the load balancer's root with others and are checked by its target group.
        if not service.routed or not isinstance(url, str) or not url.startswith("http") or service.path:
            continue
        base = url.rstrip("/")
        status = wait_healthy(name, base + service.health_check_path, timeout=timeout, get=get, sleep=sleep,
                              interval=2)
        log(f"{name}: {base}{service.health_check_path} answered {status}")
        status, body = get(base + "/version")
        if status == 200:
            try:
                versions[name] = str(json.loads(body).get("commit", "unknown"))
            except (ValueError, AttributeError):
                pass
    return versions
