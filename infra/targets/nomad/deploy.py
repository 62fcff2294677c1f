"""Nomad environments after `up`: submit the rendered job, follow its deployment, prove what runs.

The engine renders the job (`nomad.renderDir`); with `nomad.address` set too, this module
submits it through Nomad's HTTP API as `nomad job run` would, waits for the deployment, and checks
every allocation: the release's digest, and `/healthz` + `/version` on its allocated port. When the
deployment fails and Nomad's `auto_revert` puts the previous job version back, the revert becomes a
release of its own (rollback cause `reverted`) and the environment is held, as `dockyard rollback`
leaves it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.targets.nomad import job as nomad_job
from dockyard.config import ENCRYPTED, AppSettings
from dockyard.errors import DockyardError
from dockyard.manifest import Release, Rollback
from dockyard.release.stores.base import DEPLOYED, KNOWN_GOOD, Hold, ReleaseStore
from dockyard.targets.checks import VerificationFailed, http_get, wait_healthy

AGENT_HINT = "start one with ./scripts/nomad up, or set dockyard:nomad.address (and NOMAD_TOKEN) to yours"
_REVERTED_TO = re.compile(r"rolling back to job version (\d+)")
DEPLOYMENT_TIMEOUT = 600.0  # the longest healthy deadline (180 s) of a canary, then each remaining allocation


class NomadReverted(DockyardError):
    """The release failed on Nomad and Nomad's auto_revert restored the previous one (recorded and held)."""


# ----------------------------------------------------------------------------- Nomad's HTTP API


class NomadApi:
    """The few endpoints dockyard needs, with the token and namespace of the environment."""

    def __init__(self, address: str, *, token: str | None = None, namespace: str = "default",
                 region: str = "global", timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self.token, self.namespace, self.region, self.timeout = token, namespace, region, timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        query = urllib.parse.urlencode({"namespace": self.namespace, "region": self.region})
        url = f"{self.address}{path}{'&' if '?' in path else '?'}{query}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("X-Nomad-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured address
                text = response.read()
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            detail = err.read(300).decode(errors="replace").strip()
            if err.code == 403:
                raise DockyardError(f"Nomad at {self.address} refused {method} {path}: {detail or 'permission denied'}",
                                    hint="set NOMAD_TOKEN to a token whose policy may submit jobs in this "
                                         "namespace") from None
            raise DockyardError(f"Nomad at {self.address}: {method} {path} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise DockyardError(f"Nomad at {self.address} does not answer: {reason}", hint=AGENT_HINT) from None
        return json.loads(text) if text else None

    def register(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/jobs", spec)

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/job/{urllib.parse.quote(job_id)}")

    def versions(self, job_id: str) -> list[dict[str, Any]]:
        return (self._call("GET", f"/v1/job/{urllib.parse.quote(job_id)}/versions") or {}).get("Versions") or []

    def deployments(self, job_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/job/{urllib.parse.quote(job_id)}/deployments") or []

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/job/{urllib.parse.quote(job_id)}/allocations") or []

    def allocation(self, alloc_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/allocation/{alloc_id}") or {}


def api_for(settings: AppSettings, timeout: float = 10.0) -> NomadApi | None:
    """The environment's Nomad (config address, else NOMAD_ADDR), or None when neither is set."""
    address = settings.nomad.address or os.environ.get("NOMAD_ADDR")
    if not address:
        return None
    token = os.environ.get("NOMAD_TOKEN") or (settings.nomad.token if settings.nomad.token != ENCRYPTED else None)
    return NomadApi(address, token=token, namespace=settings.nomad.namespace, region=settings.nomad.region,
                    timeout=timeout)


# ----------------------------------------------------------------------------- the engine's container view


def _docker_get(path: str) -> Any:
    """GET on the Docker engine's API over DOCKER_HOST's unix socket (the engine Nomad's driver uses here)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None

    class _Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(host.removeprefix("unix://"))

    try:
        conn = _Unix("engine")
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return json.loads(body) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def container_digests(task: str, alloc_id: str) -> list[str] | None:
    """Repo digests of the image the allocation's container runs; None when the engine is not reachable."""
    container = _docker_get(f"/containers/{task}-{alloc_id}/json")
    if container is None:
        return None
    image = _docker_get(f"/images/{container['Image']}/json") or {}
    return [d.split("@", 1)[1] for d in image.get("RepoDigests") or [] if "@" in d]


# ----------------------------------------------------------------------------- following a deployment


@dataclass
class Running:
    """What runs per service: the job's wanted count, running allocations, their images and ports."""

    wanted: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    job_version: int | None = None
    release: int | None = None  # the release number the running job version was submitted for

    def to_json(self) -> dict[str, Any]:
        return {s: {"wanted": self.wanted.get(s, 0), "running": self.running.get(s, 0)}
                for s in sorted(set(self.wanted) | set(self.running))}


def registered_version(api: NomadApi, job_id: str, modify_index: int) -> int:
    """The job version a registration created (the one whose JobModifyIndex it returned)."""
    for version in api.versions(job_id):
        if version.get("JobModifyIndex") == modify_index:
            return int(version["Version"])
    job = api.job(job_id)
    return int(job["Version"]) if job else 0


def wait_deployment(api: NomadApi, job_id: str, version: int, *, timeout: float,
                    sleep: Callable[[float], None] = time.sleep,
                    log: Callable[[str], None] = lambda _: None) -> dict[str, Any] | None:
    """The finished deployment of job `version`, or None when that version needed none (nothing changed)."""
    deadline = time.monotonic() + timeout
    quiet_until = time.monotonic() + 5.0
    last = ""
    while True:
        found = next((d for d in api.deployments(job_id) if d.get("JobVersion") == version), None)
        if found is not None:
            status = found.get("Status")
            if status != last:
                log(f"  nomad deployment {found['ID'][:8]} (job version {version}): {status}"
                    f"{' - ' + found['StatusDescription'] if found.get('StatusDescription') else ''}")
                last = status
            if status not in ("running", "pending", "paused", "blocked", "unblocking", "initializing"):
                return found
        elif time.monotonic() > quiet_until:
            job = api.job(job_id) or {}
            if job.get("Version", version) != version or job.get("Stable"):
                return None  # an unchanged job: Nomad created no deployment for it
        if time.monotonic() > deadline:
            raise VerificationFailed(f"Nomad job {job_id} version {version}: the deployment did not finish within "
                                     f"{timeout:.0f}s", hint=f"nomad job status {job_id}")
        sleep(1.0)


def check_running(api: NomadApi, settings: AppSettings, job_id: str, wanted: Mapping[str, str], *,
                  health_timeout: float, get: Callable[[str], tuple[int, bytes]] = http_get,
                  sleep: Callable[[float], None] = time.sleep,
                  log: Callable[[str], None] = lambda _: None) -> Running:
    """Every allocation of the job runs the wanted digest; routed ones answer /healthz and /version."""
    job = api.job(job_id)
    if job is None:
        raise VerificationFailed(f"Nomad has no job {job_id} in namespace {api.namespace}", hint=AGENT_HINT)
    result = Running(wanted={g["Name"]: int(g.get("Count") or 0) for g in job.get("TaskGroups") or []},
                     job_version=job.get("Version"), release=nomad_job.release_number(job.get("Meta")))
    allocations = [a for a in api.allocations(job_id)
                   if a.get("ClientStatus") == "running" and a.get("DesiredStatus") == "run"]
    for service, ref in sorted(wanted.items()):
        digest = ref.split("@", 1)[1]
        mine = [a for a in allocations if a.get("TaskGroup") == service]
        result.running[service] = len(mine)
        if len(mine) != result.wanted.get(service):
            raise VerificationFailed(f"Nomad job {job_id}: {service} runs {len(mine)} allocation(s), "
                                     f"wants {result.wanted.get(service, 0)}", hint=f"nomad job status {job_id}")
        spec = settings.services[service]
        for summary in mine:
            alloc = api.allocation(summary["ID"])
            group = next(g for g in alloc["Job"]["TaskGroups"] if g["Name"] == service)
            asked = group["Tasks"][0]["Config"]["image"]
            if asked != ref:
                raise VerificationFailed(f"Nomad allocation {summary['ID'][:8]} of {service} runs {asked}, "
                                         f"not the wanted {ref}")
            digests = container_digests(service, summary["ID"])
            if digests is not None and digest not in digests:
                raise VerificationFailed(f"the container of Nomad allocation {summary['ID'][:8]} ({service}) runs "
                                         f"an image with digests {', '.join(digests) or 'none'}, not {digest}")
            if spec.port is not None:
                _check_http(service, alloc, spec.health_check_path, health_timeout, get, sleep, log)
    return result


def _check_http(service: str, alloc: Mapping[str, Any], health_path: str, timeout: float,
                get: Callable[[str], tuple[int, bytes]], sleep: Callable[[float], None],
                log: Callable[[str], None]) -> None:
    ports = ((alloc.get("AllocatedResources") or {}).get("Shared") or {}).get("Ports") or []
    port = next((p for p in ports if p.get("Label") == nomad_job.HTTP_PORT), None)
    if port is None:
        raise VerificationFailed(f"Nomad allocation {alloc['ID'][:8]} of {service} has no http port")
    base = f"http://{port.get('HostIP') or '127.0.0.1'}:{port['Value']}"
    wait_healthy(f"{service} (allocation {alloc['ID'][:8]})", base + health_path, timeout=timeout, get=get,
                 sleep=sleep, interval=1.0)
    status, body = get(base + "/version")
    if status != 200:
        raise VerificationFailed(f"{service} (allocation {alloc['ID'][:8]}) answered {status} on {base}/version")
    log(f"  {service} {alloc['ID'][:8]}: {base}{health_path} {status}, /version {body.decode(errors='replace')[:60]}")


# ----------------------------------------------------------------------------- after `up`


def rendered_spec(outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> dict[str, Any]:
    """The job file the engine wrote, carrying the wanted images."""
    path = Path((outputs.get("nomadJob") or {}).get("file") or "")
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise VerificationFailed(f"the rendered Nomad job {path} cannot be read: {err}") from None
    images = nomad_job.images_of(spec)
    for service, ref in sorted(wanted.items()):
        if images.get(service) != ref:
            raise VerificationFailed(f"rendered Nomad job {path} runs {service} as {images.get(service)}, not {ref}")
    return spec


def deploy_and_verify(ctx: Any, env: Any, store: ReleaseStore | None, version: int | None,
                      outputs: Mapping[str, Any], wanted: Mapping[str, str]) -> Running | None:
    """After the engine's `up` of a Nomad environment: submit (render mode + address), follow, verify.

    Render mode without an address is GitOps: the file is checked, nothing is submitted.
    """
    settings: AppSettings = env.settings
    job_id = (outputs.get("nomadJob") or {}).get("id") or nomad_job.job_id(settings.stack)
    rendered = bool(outputs.get("renderDir"))
    spec = rendered_spec(outputs, wanted) if rendered else None
    if rendered and not settings.nomad.address:
        return None
    api = api_for(settings)
    if api is None:
        raise DockyardError(f"{env.name}: no Nomad address to verify against", hint=AGENT_HINT)
    if spec is not None:
        ctx.log(f"Submitting Nomad job {job_id} to {api.address}...")
        registered = api.register(spec)
        job_version = registered_version(api, job_id, int(registered.get("JobModifyIndex") or 0))
    else:  # the provider registered it during `up`
        job_version = int((api.job(job_id) or {}).get("Version", 0))
    deployment = wait_deployment(api, job_id, job_version, timeout=DEPLOYMENT_TIMEOUT, log=ctx.log)
    if deployment is not None and deployment.get("Status") != "successful":
        reason = deployment.get("StatusDescription") or deployment.get("Status")
        reverted = _REVERTED_TO.search(reason or "")
        if reverted and store is not None and version is not None:
            _record_revert(ctx, env, store, api, job_id, version, job_version, int(reverted.group(1)), reason)
        raise VerificationFailed(f"Nomad deployment of job {job_id} version {job_version} failed: {reason}",
                                 hint=f"nomad job status {job_id}")
    return check_running(api, settings, job_id, wanted, health_timeout=ctx.health_timeout, log=ctx.log)


def _record_revert(ctx: Any, env: Any, store: ReleaseStore, api: NomadApi, job_id: str, failed: int,
                   failed_job_version: int, restored_job_version: int, reason: str) -> None:
    """Nomad went back to an earlier job version on its own: write that as a release, hold, prove it runs."""
    restored = next((v for v in api.versions(job_id) if v.get("Version") == restored_job_version), None)
    to = nomad_job.release_number((restored or {}).get("Meta"))
    target = store.get(to) if to is not None else None
    if target is None:
        raise VerificationFailed(f"release {failed} of {env.name} failed on Nomad ({reason}); Nomad reverted job "
                                 f"{job_id} to version {restored_job_version}, which names no release of "
                                 f"{env.name} that dockyard keeps", hint=f"nomad job history {job_id}")
    ctx.log(f"{env.name}: Nomad reverted job {job_id} to version {restored_job_version} (release {to})")
    release = Release(images=target.release.images, source=f"rollback:v{to}", commit=target.release.commit,
                      by=ctx.user, at=ctx.timestamp(), reason=f"Nomad reverted release {failed}: {reason}",
                      rollback=Rollback(of=failed, to=to, cause="reverted", reason=reason))
    appended = store.append(release, expected=failed)
    store.set_hold(Hold(version=appended.version, by=ctx.user, at=ctx.timestamp(),
                        reason=f"release {failed} failed on Nomad; Nomad reverted to release {to}"))
    store.label(DEPLOYED, appended.version)
    lift = (f"fix the cause, then promote with --release-hold (dockyard promote {env.name} --from <src> "
            "--release-hold)")
    # The revert is a job version of its own, with a deployment of its own: wait for it, then check it.
    revert_version = int((api.job(job_id) or {}).get("Version", failed_job_version + 1))
    try:
        wait_deployment(api, job_id, revert_version, timeout=DEPLOYMENT_TIMEOUT, log=ctx.log)
        check_running(api, env.settings, job_id, target.release.image_strings(), health_timeout=ctx.health_timeout,
                      log=ctx.log)
    except DockyardError as err:
        raise NomadReverted(f"release {failed} of {env.name} failed on Nomad ({reason}); Nomad's revert to release "
                            f"{to} (recorded as release {appended.version}) does not verify either: {err.message}",
                            hint=f"{env.name} is held; look at `nomad job status {job_id}`, then {lift}") from None
    store.label(KNOWN_GOOD, appended.version)
    raise NomadReverted(f"release {failed} of {env.name} failed on Nomad ({reason}); Nomad reverted to release {to}, "
                        f"recorded as release {appended.version} (verified); {env.name} is held", hint=lift)


def status(settings: AppSettings) -> tuple[dict[str, Any] | None, str | None]:
    """Wanted vs running allocations per service, from the job; (None, why) when Nomad cannot say."""
    api = api_for(settings, timeout=5.0)
    if api is None:
        return None, None
    job_id = nomad_job.job_id(settings.stack)
    try:
        job = api.job(job_id)
        if job is None:
            return None, f"no job {job_id} on {api.address}"
        wanted = {g["Name"]: int(g.get("Count") or 0) for g in job.get("TaskGroups") or []}
        allocs = api.allocations(job_id)
    except DockyardError as err:
        return None, err.message
    running = {s: sum(1 for a in allocs if a.get("TaskGroup") == s and a.get("ClientStatus") == "running"
                      and a.get("DesiredStatus") == "run") for s in wanted}
    return {"job": job_id, "jobVersion": job.get("Version"), "release": nomad_job.release_number(job.get("Meta")),
            "services": {s: {"wanted": wanted[s], "running": running[s]} for s in sorted(wanted)}}, None
