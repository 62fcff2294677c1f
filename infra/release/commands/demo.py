"""`dockyard demo`: the whole release story with real images, on the real engine, in `.dockyard/demo/`.

The demo workspace is a project of its own (same program, its own stacks and
file backend) with a copy of `images/` in a git repository, so each service
has a real commit. Images are built with the local container engine, pushed to
the loopback registry that `./scripts/engine up` runs, and every step after
that works with the digests the registry serves. App stacks `dev` and `prod`
keep their releases in the file store and deploy to the Kubernetes cluster that
KUBECONFIG names when it answers (`./scripts/cluster up` runs one on this
machine), verifying the digest every pod runs; otherwise they render manifests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import BadInput, DockyardError
from dockyard.release.commands import branches
from dockyard.release.commands import inspect
from dockyard.targets.kubernetes import verify as kube_verify
from dockyard.release.commands import build_local as local
from dockyard.release.commands import promotion
from dockyard.release.context import Context
from dockyard.release.engine import AutomationDeployer
from dockyard.release.registries.local_build import Engine, build_local
from dockyard.release.project import Project

SERVICES = ("web", "worker")
BRANCH = "feature/demo-banner"
REGISTRY_ENV = "DOCKYARD_REGISTRY"
REPOSITORY_PREFIX = "dockyard-demo"
PUBLIC_KEY_ENV = "DOCKYARD_SIGNING_PUBLIC_KEY"


def registry_config(registry: str, prebuilt: dict[str, str] | None = None, *,
                    packer: bool = False) -> dict[str, Any]:
    """The demo's registry stack: any OCI registry (here the loopback one), images built by the command."""
    services: dict[str, Any] = {s: {} for s in SERVICES}
    if packer:
        services["worker"] = {"builder": "packer"}
    config: dict[str, Any] = {
        "dockyard:role": "registry",
        "dockyard:registry": "oci",
        "dockyard:oci": {"host": registry, "prefix": REPOSITORY_PREFIX},
        "dockyard:publish": False,
        "dockyard:services": services,
    }
    if prebuilt:
        config["dockyard:prebuilt"] = dict(prebuilt)
    return config


def app_config(workdir: Path, stack: str, *, live: bool = False) -> dict[str, Any]:
    """`live`: deploy to a cluster (the kubeconfig is added as a secret afterwards), else render manifests."""
    kubernetes: dict[str, Any] = {"namespace": f"shop-{stack}", "ingressClass": "nginx",
                                  "host": f"{stack}.shop.example.com"}
    if not live:
        kubernetes["renderDir"] = str(workdir / "rendered" / stack)
    # On a two-core node every pod requests a quarter core: dev runs one web pod, prod two.
    web_count = 1 if live and stack != "prod" else 2
    return {
        "dockyard:role": "app",
        "dockyard:target": "kubernetes",
        "dockyard:imageSource": "file",
        "dockyard:releaseDir": str(workdir / "releases" / stack),
        "dockyard:trust": demo_trust(),
        "dockyard:kubernetes": kubernetes,
        "dockyard:services": {
            "web": {"port": 8080, "desiredCount": web_count, "maxCount": 4, "environment": {"LOG_LEVEL": "info"}},
            "worker": {"desiredCount": 1, "healthCheckCommand": ["python", "worker.py", "--check"]},
        },
    }


def live_cluster(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(kubeconfig path, how it answered) when KUBECONFIG names a cluster that answers; else (None, why not)."""
    path = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if not path:
        return None, "KUBECONFIG is not set (./scripts/cluster up starts a cluster on this machine)"
    if not Path(path).is_file():
        return None, f"KUBECONFIG={path} does not exist"
    try:
        client = kube_verify.connect(str(Path(path).resolve()), timeout=5)
        version = client.get("/version")
    except (DockyardError, OSError, ValueError) as err:
        return None, f"the cluster of KUBECONFIG={path} does not answer ({getattr(err, 'message', err)})"
    return path, f"{client.server}, Kubernetes {version.get('gitVersion', '?')}"


@dataclass
class DemoResult:
    workdir: Path
    registry: str
    steps: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    builds: dict[str, int] = field(default_factory=dict)  # "built" / "unchanged": counts over every build step
    engine_log: str = ""
    kubeconfig: str | None = None  # the live cluster's, when the stacks deployed to one

    def to_json(self) -> dict[str, Any]:
        data = {"workdir": str(self.workdir), "registry": self.registry, "steps": self.steps,
                "rendered": self.rendered, "environments": self.environments, "builds": self.builds,
                "engineLog": self.engine_log}
        if self.kubeconfig:
            data["kubeconfig"] = self.kubeconfig
        return data

    def lines(self) -> list[str]:
        lines = ["", f"Done: {len(self.steps)} steps, images built for real and served by {self.registry}."]
        for env, data in sorted(self.environments.items()):
            lines.append(f"  {env}: release {data['version']}")
            lines += [f"    {service}: {ref}" for service, ref in sorted(data["images"].items())]
        web = self.environments.get("prod", {}).get("images", {}).get("web", "")
        if self.kubeconfig:
            prod = self.environments.get("prod", {}).get("namespace", "shop-prod")
            return lines + [
                "", f"Try next (the cluster's kubeconfig: {self.kubeconfig}):",
                f"  kubectl --kubeconfig {self.kubeconfig} get pods -n {prod} "
                "-o custom-columns=POD:.metadata.name,IMAGE:.status.containerStatuses[0].imageID",
                f"  .venv/bin/dockyard status --project-dir {self.workdir}",
                f"  .venv/bin/dockyard history prod --project-dir {self.workdir}",
                "The cluster and the registry keep running; stop them with: ./scripts/demo --down "
                "(or ./scripts/cluster down, then ./scripts/engine down)",
                f"Engine log: {self.engine_log}"]
        lines += ["", "Try next (with the engine's environment: eval \"$(./scripts/engine env)\"):",
                  f"  docker run --rm -d -p 127.0.0.1:8080:8080 --read-only --tmpfs /tmp {web}",
                  "  curl -s 127.0.0.1:8080/version",
                  f"  .venv/bin/dockyard status --project-dir {self.workdir}",
                  f"  kubectl apply -R -f {self.workdir / 'rendered' / 'prod'}   (the rendered manifests)",
                  "The registry keeps running; stop it and the engine with: ./scripts/engine down",
                  f"Engine log: {self.engine_log}"]
        return lines


def demo_trust() -> Any:
    """Both environments trust the set-up's key (scripts/signing); without one they say `none` explicitly."""
    public_key = os.environ.get(PUBLIC_KEY_ENV)
    return {"keys": [public_key]} if public_key else "none"


@dataclass
class Refusal:
    text: str

    def lines(self) -> list[str]:
        return [self.text]


def refuse_unsigned(ctx: Context, registry: str, built: str) -> Refusal:
    """Push a copy of a signed image to a repository with no signature beside it; the gate must refuse it."""
    if not os.environ.get(PUBLIC_KEY_ENV):
        return Refusal(f"skipped: no signing key ({PUBLIC_KEY_ENV} unset; ./scripts/signing up makes one)")
    docker = Engine.find().docker
    copy = f"{registry}/{REPOSITORY_PREFIX}/web-unsigned:demo"
    subprocess.run([docker, "tag", built.split("@", 1)[0], copy], check=True, capture_output=True)
    pushed = subprocess.run([docker, "push", copy], check=True, capture_output=True, text=True).stdout
    digest = pushed.rsplit("digest: ", 1)[1].split()[0]
    try:
        branches.up(ctx, "unsigned-demo", base="dev", images=[f"web={copy.rsplit(':', 1)[0]}@{digest}"])
    except BadInput as err:
        return Refusal(f"refused, exit {err.exit_code}: {err.message}")
    raise DockyardError("the trust gate let an unsigned image through")


class Story:
    """Numbered steps on stderr, one line per meaningful event; recorded for the summary."""

    def __init__(self, ctx: Context, result: DemoResult) -> None:
        self.ctx, self.result = ctx, result
        self.number = 0

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        self.number += 1
        self.ctx.log(f"\n{self.number}. {title}")
        outcome = action()
        for line in getattr(outcome, "lines", lambda: [])():
            if line.strip():
                self.ctx.log(f"   {line}")
        self.result.steps.append(title)
        return outcome


def _git(workdir: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "dockyard demo", "GIT_AUTHOR_EMAIL": "demo@dockyard.invalid",
           "GIT_COMMITTER_NAME": "dockyard demo", "GIT_COMMITTER_EMAIL": "demo@dockyard.invalid"}
    subprocess.run(["git", *args], cwd=workdir, env=env, check=True, capture_output=True, text=True)


def prepare(project_root: Path, workdir: Path, registry: str, *, packer: bool, live: bool = False) -> Project:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    # A project of its own (same name, same program) so the demo never touches the real stacks.
    (workdir / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "dockyard", "description": "dockyard demo workspace",
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(project_root / ".venv")}},
        "main": os.path.relpath(project_root, workdir)}, sort_keys=False))
    shutil.copytree(project_root / "images", workdir / "images", ignore=shutil.ignore_patterns("__pycache__"))
    (workdir / ".gitignore").write_text("state/\npulumi-home/\nreleases/\nrendered/\n.dockyard/\n")
    _git(workdir, "init", "-q", "-b", "main")
    _git(workdir, "add", ".")
    _git(workdir, "commit", "-q", "-m", "demo: the services as they are in this checkout")
    project = Project(workdir)
    project.write_stack_config("registry", registry_config(registry, packer=packer))
    for stack in ("dev", "prod"):
        project.write_stack_config(stack, app_config(workdir, stack, live=live))
    return project


def change_web(workdir: Path, greeting: str, message: str) -> None:
    """A source change to web only, committed: its inputs (and commit) change, worker's do not."""
    app = workdir / "images" / "web" / "app.py"
    text = app.read_text()
    start = text.index('"message": "') + len('"message": "')
    app.write_text(text[:start] + greeting + text[text.index('"', start):])
    _git(workdir, "commit", "-q", "-am", message)


def break_web_health(workdir: Path) -> None:
    """A web change whose /healthz answers 503: the image builds and starts, its readiness never passes."""
    app = workdir / "images" / "web" / "app.py"
    text = app.read_text()
    healthy = 'self._json(200, {"status": "ok"})'
    app.write_text(text.replace(healthy, 'self._json(503, {"status": "broken on purpose by the demo"})', 1))
    _git(workdir, "commit", "-q", "-am", "web: /healthz fails (a deliberately broken release)")


def reset_namespaces(kubeconfig: Path, names: tuple[str, ...], log: Callable[[str], None],
                     timeout: float = 180.0) -> None:
    """Delete what an earlier demo left running in its namespaces: this run's stacks start from nothing,
    and objects another run's engine manages would conflict with theirs."""
    client = kube_verify.connect(str(kubeconfig.resolve()))
    existing = [n for n in names if client.request(f"/api/v1/namespaces/{n}")[0] == 200]
    listed = client.get("/api/v1/namespaces").get("items", [])
    existing += [item["metadata"]["name"] for item in listed
                 if item["metadata"]["name"].startswith(tuple(f"{n}-" for n in names))]
    if not existing:
        return
    log(f"dockyard demo: deleting what an earlier demo left in {', '.join(existing)}")
    for name in existing:
        client.request(f"/api/v1/namespaces/{name}", method="DELETE")
    deadline = time.monotonic() + timeout
    while any(client.request(f"/api/v1/namespaces/{n}")[0] == 200 for n in existing):
        if time.monotonic() > deadline:
            raise DockyardError(f"namespaces {', '.join(existing)} are still terminating after {timeout:.0f}s",
                                hint="look at them with kubectl get all -n <namespace>, then run the demo again")
        time.sleep(1)


def set_kubeconfig(workdir: Path, stacks: tuple[str, ...], kubeconfig: Path) -> None:
    """The cluster's kubeconfig as each stack's secret config (encrypted in the stack file)."""
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(workdir))
    for stack in stacks:
        auto.Stack.create_or_select(stack, workspace).set_config(
            "dockyard:kubernetes.kubeconfig", auto.ConfigValue(value=kubeconfig.read_text(), secret=True), path=True)


@dataclass
class PodsSeen:
    """Each pod of a namespace with the digest it runs, as the API server reports it."""

    namespace: str
    pods: list[tuple[str, str]]
    note: str = ""

    def lines(self) -> list[str]:
        return ([self.note] if self.note else []) + [f"{self.namespace}: {pod} runs {kube_verify.short(digest)}"
                                                     for pod, digest in self.pods]


def pods_of(kubeconfig: Path, namespace: str, note: str = "") -> PodsSeen:
    client = kube_verify.connect(str(kubeconfig.resolve()))
    items = client.get(f"/api/v1/namespaces/{namespace}/pods").get("items", [])
    seen = []
    for pod in sorted(items, key=lambda p: p["metadata"]["name"]):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for status in pod.get("status", {}).get("containerStatuses") or []:
            seen.append((pod["metadata"]["name"], kube_verify.digest_of(status.get("imageID") or "(pulling)")))
    return PodsSeen(namespace, seen, note)


def run_demo(project_root: Path, workdir: Path, log: Callable[[str], None]) -> DemoResult:
    registry = os.environ.get(REGISTRY_ENV)
    if not registry:
        raise DockyardError(f"{REGISTRY_ENV} is not set: the demo pushes to a registry",
                            hint="run ./scripts/demo (it starts the engine and registry), or "
                                 "eval \"$(./scripts/engine env)\" first")
    Engine.find()  # a clear error now, rather than at the first build
    packer = shutil.which("packer") is not None and (project_root / "images" / "worker" / "worker.pkr.hcl").is_file()
    kubeconfig, cluster = live_cluster(os.environ)
    project = prepare(project_root, workdir, registry, packer=packer, live=kubeconfig is not None)
    env = local.local_engine_env(workdir / "state", project_root)
    local.require_engine(env)
    local.apply(env)
    if kubeconfig:
        reset_namespaces(Path(kubeconfig), ("shop-dev", "shop-prod"), log)
        set_kubeconfig(workdir, ("dev", "prod"), Path(kubeconfig))
    engine_log = workdir / "engine.log"
    ctx = Context(project=project,
                  deployer_factory=lambda: AutomationDeployer(project.dir, log=log, engine_log=engine_log),
                  log=log, confirm=None, user="demo", health_timeout=45.0)
    result = DemoResult(workdir=workdir, registry=registry, engine_log=str(engine_log),
                        kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else None)
    story = Story(ctx, result)
    log(f"dockyard demo: real images, pushed to {registry}; the engine's full log is in {engine_log}")
    if kubeconfig:
        log(f"dockyard demo: dev and prod deploy to the cluster at {cluster} (namespaces shop-dev, shop-prod)")
    else:
        log(f"dockyard demo: no live cluster, so dev and prod render manifests: {cluster}")

    def build(**options: Any) -> Any:
        outcome = build_local(ctx, services=options.get("services", []), push_only=options.get("push_only", False),
                              against=None)
        for b in outcome.builds:
            key = "built" if b.built else "unchanged"
            result.builds[key] = result.builds.get(key, 0) + 1
        return outcome

    def promote(env_name: str, source: str, reason: str) -> Any:
        return promotion.promote(ctx, env_name, source, services=[], reason=reason, deploy=True, yes=True,
                                 release_hold=False)

    worker_how = "Packer" if packer else "docker"
    story.step(f"Build web (docker) and worker ({worker_how}), push them, record their digests", build)
    story.step("Promote the registry's release into dev; deploy and verify", lambda: promote("dev", "registry",
                                                                                            "first release"))
    story.step("Promote dev into prod", lambda: promote("prod", "dev", "ship release 1"))
    change_web(workdir, "hello from release 2", "web: new greeting")
    story.step("Change web only and build again: web is rebuilt, worker is not", build)
    story.step("Promote the new web into dev", lambda: promote("dev", "registry", "new web"))
    status = story.step("Status: dev is ahead of prod", lambda: inspect.status(ctx, ["dev", "prod"]))
    _log_table(log, *status.table())
    story.step("Promote dev into prod", lambda: promote("prod", "dev", "ship release 2"))
    if kubeconfig:
        story.step("Pods of prod now run release 2's web", lambda: pods_of(Path(kubeconfig), "shop-prod"))
    story.step("Roll prod back to release 1: no rebuild, the old digests still in the registry",
               lambda: promotion.rollback(ctx, "prod", to=1, services=[], reason="release 2 misbehaves",
                                          deploy=True, yes=True))
    if kubeconfig:
        story.step("Pods of prod run release 1's web again", lambda: pods_of(Path(kubeconfig), "shop-prod"))
    history = story.step("History of prod", lambda: inspect.history(ctx, "prod", None))
    _log_table(log, *history.table())
    change_web(workdir, "hello from the banner branch", "web: banner (branch)")
    branch_build = story.step(f"Build the branch {BRANCH}'s own web image (push only, nothing recorded)",
                              lambda: build(services=["web"], push_only=True))
    story.step(f"Open a branch stack for {BRANCH} with that image", lambda: branches.up(
        ctx, BRANCH, base="dev", images=[f"web={branch_build.images['web']}"]))
    story.step("Try a branch stack with an unsigned copy of that image: the trust gate refuses it",
               lambda: refuse_unsigned(ctx, registry, branch_build.images["web"]))
    story.step("Destroy the branch stack (and its branch-only image)", lambda: branches.destroy(ctx, BRANCH))
    if kubeconfig:
        break_web_health(workdir)
        story.step("Build a web whose /healthz fails", lambda: build(services=["web"]))

        def broken() -> PodsSeen:
            try:
                promotion.promote(ctx, "dev", "registry", services=[], reason="a broken web", deploy=True, yes=True,
                                  release_hold=True)
            except DockyardError as failure:
                return pods_of(Path(kubeconfig), "shop-dev", note=f"promote failed as it should: {failure.message}")
            raise DockyardError("the broken release passed verification; the demo expected it to fail")

        story.step("Promote it into dev: verification fails, dev rolls back to its known-good release by itself",
                   broken)
    for env_name in ("dev", "prod"):
        current = ctx.store(project.environment(env_name)).current()
        if current is not None:
            result.environments[env_name] = {"version": current.version,
                                             "images": current.release.image_strings()}
            if kubeconfig:
                result.environments[env_name]["namespace"] = f"shop-{env_name}"
    result.rendered = sorted(str(p) for p in (workdir / "rendered").glob("*")
                             if p.is_dir() and any(f.is_file() for f in p.rglob("*.yaml")))
    return result


def _log_table(log: Callable[[str], None], header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        log("   " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
