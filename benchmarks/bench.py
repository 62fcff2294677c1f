"""dockyard's costs, each measured against a baseline in the same run (absolute times here are noisy).

    benchmarks/run [--skip-suite]      prints the table and writes benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Row = tuple[str, str, str, str, str]  # what, measured, baseline, ratio, target


def recorded_image(service: str, build: str) -> str:
    """A pinned reference standing for an image another CI pushed (the registry is not asked here)."""
    digest = hashlib.sha256(f"dockyard-bench/{service}/{build}".encode()).hexdigest()
    return f"registry.invalid/dockyard-bench/{service}@sha256:{digest}"


class PresentImages:
    """Registries in which every digest is present (non-root images): the AWS call counts measure the stores alone."""

    def for_ref(self, ref: Any) -> Any:
        class Client:
            host = ref.registry

            def manifest_digest(self, repository: str, digest: str) -> str:
                return digest

            def tag(self, repository: str, digest: str, tag: str) -> None:
                pass

            def image_config(self, repository: str, digest: str) -> dict[str, Any]:
                return {"config": {"User": "10001", "Labels": {}}}  # a non-root image without a revision label

        return Client()


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ----------------------------------------------------------------------------- program under mocks


def program_under_mocks() -> list[Row]:
    from dockyard.program import main
    from tests.support.pulumi_harness import ECR_HOST, DockyardMocks, fake_digest, run_program

    def services(n: int) -> list[str]:
        return [f"svc{i}" for i in range(n)]

    def images(n: int) -> dict[str, str]:
        return {s: f"{ECR_HOST}/dockyard/{s}@{fake_digest(s)}" for s in services(n)}

    def registry(n: int) -> Callable[[], Any]:
        config = {"dockyard:role": "registry", "dockyard:registry": "external",
                  "dockyard:services": {s: {} for s in services(n)}, "dockyard:prebuilt": images(n)}
        return lambda: run_program(main, config=config, stack="registry")

    def app(n: int, target: str) -> Callable[[], Any]:
        # runAsUser: a stack-following environment has no recorded image config, and under mocks there is
        # no registry to read each image's USER from.
        svc = {s: ({"port": 8080} if i == 0 else {"port": 8080, "path": f"/{s}/*"}) | {"runAsUser": 10001}
               for i, s in enumerate(services(n))}
        config = {"dockyard:role": "app", "dockyard:imageSource": "stack", "dockyard:target": target,
                  "dockyard:services": svc, "dockyard:database": False}
        if target == "kubernetes":
            config["dockyard:kubernetes"] = {"renderDir": "/tmp/dockyard-bench-render"}
        mocks = lambda: DockyardMocks(stack_outputs={"organization/dockyard/registry": {"images": images(n)}})  # noqa: E731
        return lambda: run_program(main, config=config, stack="bench", mocks=mocks())

    def raw_runtime(n: int) -> Callable[[], Any]:
        """The Pulumi runtime alone: 7 plain resources with a nested spec per service, no dockyard code."""
        import pulumi_kubernetes as k8s

        def program() -> None:
            for i in range(n * 7):
                k8s.core.v1.ConfigMap(f"cm{i}", data={"spec": json.dumps({"i": i, "labels": {"a": "b"}})})
        return lambda: run_program(program, config={}, stack="raw")

    empty = best_of(lambda: run_program(lambda: None, config={}, stack="empty"))
    rows: list[Row] = [("empty program under mocks", f"{empty * 1000:.0f} ms", "-", "-", "subtracted below")]
    growth: dict[str, float] = {}
    for name, make in (("Pulumi runtime alone, 7 resources/service", raw_runtime), ("registry", registry),
                       ("app ecs", lambda n: app(n, "ecs")), ("app kubernetes", lambda n: app(n, "kubernetes"))):
        times = {n: best_of(make(n)) - empty for n in (1, 10, 50)}
        per = {n: times[n] / n for n in times}
        # Marginal cost of a service between 10 and 50, against that between 1 and 10: 1.0 is linear.
        growth[name] = ((times[50] - times[10]) / 40) / ((times[10] - times[1]) / 9)
        baseline = growth.get("Pulumi runtime alone, 7 resources/service")
        rows.append((f"{name}: per service at 1 / 10 / 50",
                     " / ".join(f"{per[n] * 1000:.1f} ms" for n in (1, 10, 50)),
                     "-" if name.startswith("Pulumi") else f"runtime growth {baseline:.2f}",
                     f"growth {growth[name]:.2f}",
                     "growth = marginal cost 10->50 / 1->10; 1.0 is linear"))
    return rows


# ----------------------------------------------------------------------------- real engine


def real_engine() -> list[Row]:
    import yaml

    from dockyard.release.commands import build_local as local

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, **local.local_engine_env(work / "state", ROOT), "PYTHONPATH": str(ROOT)}
        try:
            local.require_engine(env)
        except Exception as err:  # noqa: BLE001 - reported in the table
            return [("real engine", "not available", "-", "-", str(err))]

        def project(directory: Path, main: str | None) -> None:
            directory.mkdir()
            spec: dict[str, Any] = {"name": "dockyard", "runtime": "python"}
            if main:
                spec["main"] = os.path.relpath(main, directory)
            (directory / "Pulumi.yaml").write_text(yaml.safe_dump(spec))

        def pulumi(directory: Path, *args: str) -> None:
            subprocess.run(["pulumi", *args, "--cwd", str(directory), "--non-interactive"], env=env, check=True,
                           capture_output=True, text=True, timeout=600)

        empty = work / "empty"
        project(empty, None)
        (empty / "__main__.py").write_text("import pulumi\n")
        pulumi(empty, "stack", "init", "organization/dockyard/empty")
        baseline = best_of(lambda: pulumi(empty, "preview", "-s", "empty"), repeat=2)
        rows.append(("pulumi preview, empty Python program (baseline)", f"{baseline:.2f} s", "-", "-", "-"))
        for n in (1, 10):
            directory = work / f"k8s{n}"
            project(directory, str(ROOT))
            names = [f"svc{i}" for i in range(n)]
            versions = directory / "releases" / "versions"
            versions.mkdir(parents=True)
            (versions / "000001.json").write_text(json.dumps(
                {"schema": 1, "images": {s: recorded_image(s, "bench") for s in names}}))
            config = {"dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
                      "dockyard:releaseDir": str(directory / "releases"),
                      "dockyard:kubernetes": {"renderDir": str(directory / "rendered")},
                      "dockyard:services": {s: {"port": 8080, **({"path": f"/{s}/*"} if i else {})}
                                            for i, s in enumerate(names)}}
            stack = f"bench{n}"
            (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
            pulumi(directory, "stack", "init", f"organization/dockyard/{stack}")
            took = best_of(lambda: pulumi(directory, "preview", "-s", stack), repeat=2)
            rows.append((f"pulumi preview, Kubernetes app with {n} service(s)", f"{took:.2f} s", f"{baseline:.2f} s",
                         f"{took / baseline:.2f}", "-"))
    return rows


# ----------------------------------------------------------------------------- the command


def command_start() -> list[Row]:
    python = sys.executable

    def run(*args: str, env: dict[str, str] | None = None) -> None:
        subprocess.run(list(args), check=True, capture_output=True, env=env, cwd=ROOT, timeout=60)

    def timed(*args: str, env: dict[str, str] | None = None) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            run(*args, env=env)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    boto3_import = timed(python, "-c", "import boto3")
    help_time = timed(python, "-m", "dockyard.release.cli", "--help")
    rows: list[Row] = [("python -c 'import boto3' (baseline)", f"{boto3_import * 1000:.0f} ms", "-", "-", "-"),
                       ("dockyard --help", f"{help_time * 1000:.0f} ms", "import boto3",
                        f"{help_time / boto3_import:.2f}", "<= 1.5")]
    heavy = subprocess.run([python, "-c", "import sys, dockyard.release.cli, dockyard.release.commands.inspect; "
                            "print(sorted(m for m in sys.modules if m.startswith(('pulumi_aws', 'pulumi_kubernetes', "
                            "'pulumi_docker'))))"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    rows.append(("provider SDKs imported by the command", heavy or "[]", "-", "-", "none"))
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        seed_release(env, project)
        status = timed(python, "-m", "dockyard.release.cli", "status", "dev", "prod", "--json", "--project-dir",
                       str(project), env=env)
        rows.append(("dockyard status --json (moto server, 2 envs)", f"{status * 1000:.0f} ms", "import boto3",
                     f"{status / boto3_import:.2f}", "-"))
    return rows


class moto_server:
    def __enter__(self) -> str:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def make_project(directory: Path) -> Path:
    import yaml

    (directory / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    services = {"web": {"port": 8080}, "worker": {}}
    for env in ("dev", "prod"):
        (directory / f"Pulumi.{env}.yaml").write_text(yaml.safe_dump({"config": {
            "dockyard:role": "app", "dockyard:imageSource": "ssm", "dockyard:services": services,
            "dockyard:trust": "none"}}))
    return directory


def seed_release(env: dict[str, str], project: Path) -> None:
    import boto3

    ssm = boto3.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    for build in ("one", "two"):
        ssm.put_parameter(Name="/dockyard/dev/release", Type="String", Overwrite=True, Value=json.dumps(
            {"schema": 1, "images": {s: recorded_image(s, build) for s in ("web", "worker")}}))
    del project


# ----------------------------------------------------------------------------- AWS calls


def aws_calls() -> list[Row]:
    import boto3

    from dockyard.release.commands import inspect

    from dockyard.release.commands import promotion
    from dockyard.release.context import Context
    from dockyard.release.project import Project

    # The fewest calls each operation can make with SSM as the store:
    # promote: read the source, read the target, read the hold, write. rollback: read, write, hold.
    # status of one environment: its versions with labels, its hold.
    minimum = {"promote --no-deploy": 4, "rollback --no-deploy": 3, "status (1 env)": 2}
    rows: list[Row] = []
    saved = dict(os.environ)
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench")
        project = Project(make_project(Path(tmp)))
        seed_release(dict(os.environ), project.dir)
        calls: list[str] = []
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call", lambda model, **_: calls.append(model.name))

        def count(fn: Callable[[Context], Any]) -> list[str]:
            calls.clear()
            fn(Context(project=project, deployer_factory=lambda: None, user="bench",
                       registries=PresentImages()))  # type: ignore[arg-type]
            return list(calls)

        counted = {
            "promote --no-deploy": count(lambda ctx: promotion.promote(
                ctx, "prod", "dev", services=[], reason=None, deploy=False, yes=True, release_hold=False,
                unverified=True)),
            "rollback --no-deploy": count(lambda ctx: promotion.rollback(
                ctx, "dev", to=1, services=[], reason=None, deploy=False, yes=True)),
            "status (1 env)": count(lambda ctx: inspect.status(ctx, ["prod"])),
        }
        for operation, made in counted.items():
            rows.append((f"AWS calls: {operation}", f"{len(made)} ({', '.join(made)})", f"{minimum[operation]} (minimum)",
                         f"+{len(made) - minimum[operation]}", "<= +1"))
    os.environ.clear()
    os.environ.update(saved)  # the suite timed later must not inherit the stopped server's endpoint
    return rows


def ecs_watch_calls() -> list[Row]:
    """ECS calls to follow a deployment through its phases and verify its digests (botocore-stubbed)."""
    from types import SimpleNamespace

    import boto3
    from botocore.stub import Stubber

    from dockyard.targets.ecs import rollout as ecs_deploy

    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/bench"
    digest = "sha256:" + "a" * 64
    rows: list[Row] = []
    for n in (3, 25):
        names = [f"svc{i:02d}" for i in range(n)]
        ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        calls: list[str] = []
        ecs.meta.events.register("before-parameter-build.ecs", lambda model, **_: calls.append(model.name))
        stub = Stubber(ecs)
        arn = {s: f"arn:aws:ecs:us-east-1:123456789012:service-deployment/bench/{s}/d1" for s in names}
        rev = {s: f"arn:aws:ecs:us-east-1:123456789012:service-revision/bench/{s}/r1" for s in names}
        for start in range(0, n, 10):
            stub.add_response("describe_services", {"services": [
                {"serviceName": s, "currentServiceDeployment": arn[s]} for s in names[start:start + 10]]})
        phases = [{"status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
                  {"status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"}, {"status": "SUCCESSFUL"}]
        for state in phases:
            for start in range(0, n, 20):
                stub.add_response("describe_service_deployments", {"serviceDeployments": [
                    {"serviceDeploymentArn": arn[s], "targetServiceRevision": {"arn": rev[s]}, **state}
                    for s in names[start:start + 20]]})
        for start in range(0, n, 20):
            stub.add_response("describe_service_revisions", {"serviceRevisions": [
                {"serviceRevisionArn": rev[s], "containerImages": [{"containerName": s, "imageDigest": digest}]}
                for s in names[start:start + 20]]})
        ctx = SimpleNamespace(aws=SimpleNamespace(ecs=lambda e=ecs: e), log=lambda _: None, sleep=lambda _: None,
                              ecs_poll_seconds=10.0, ecs_timeout=3600.0)
        outputs = {"deployments": {s: {"cluster": cluster, "service": s} for s in names}}
        with stub:
            ecs_deploy.verify_deployments(ctx, outputs, {s: f"example.com/{s}@{digest}" for s in names}, env="bench")
        batches = -(-n // 20)
        # DescribeServices per 10 services; per poll one DescribeServiceDeployments per 20; revisions per 20.
        minimum = -(-n // 10) + len(phases) * batches + batches
        counts = {c: calls.count(c) for c in dict.fromkeys(calls)}
        rows.append((f"ECS calls: deploy watch, {n} services, {len(phases)} polls",
                     f"{len(calls)} ({', '.join(f'{c} {k}' for c, k in counts.items())})",
                     f"{minimum} (minimum)", f"+{len(calls) - minimum}", "+0"))
    return rows


# ----------------------------------------------------------------------------- the suite


def local_builds() -> list[Row]:
    """`dockyard build --local` with nothing changed: builds and pushes (counts), time beside a plain docker build."""
    import shutil

    from dockyard.release.context import Context
    from dockyard.release.registries.local_build import build_local
    from dockyard.release.project import Project
    from tests.release.conftest import FakeEngine

    registry = os.environ.get("DOCKYARD_REGISTRY")
    docker = shutil.which("docker")
    if not registry or not docker or subprocess.run([docker, "version"], capture_output=True).returncode != 0:
        return [("local build", "skipped", "-", "-", "no container engine or registry (./scripts/engine up)")]
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        shutil.copytree(ROOT / "images", project / "images", ignore=shutil.ignore_patterns("__pycache__"))
        (project / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
        (project / "Pulumi.registry.yaml").write_text(json.dumps({"config": {
            "dockyard:role": "registry", "dockyard:registry": "oci",
            "dockyard:oci": {"host": registry, "prefix": "dockyard-bench"}}}))
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@dockyard.invalid"]
        subprocess.run([*git, "init", "-q"], cwd=project, check=True)
        subprocess.run([*git, "add", "."], cwd=project, check=True)
        subprocess.run([*git, "commit", "-qm", "bench"], cwd=project, check=True)

        def build() -> tuple[Any, int]:
            engine = FakeEngine(Project(project))
            ctx = Context(project=Project(project), deployer_factory=lambda: engine)
            return build_local(ctx, services=[], push_only=True, against=None), ctx.registries.calls

        build()  # the first build of these inputs (or none, when an earlier run pushed them)
        start = time.perf_counter()
        again, calls = build()
        minimum = 2 * (3 if os.environ.get("DOCKYARD_SIGNING_KEY") else 1)
        unchanged = time.perf_counter() - start
        built = sum(b.built for b in again.builds)
        pushed = sum(b.pushed for b in again.builds)
        args = [f"--build-arg=PYTHON_IMAGE={os.environ['DOCKYARD_PYTHON_IMAGE']}"] \
            if os.environ.get("DOCKYARD_PYTHON_IMAGE") else []
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}

        def plain() -> None:
            subprocess.run([docker, "build", "-q", *args, str(ROOT / "images" / "web")], check=True,
                           capture_output=True, env=env)

        plain()  # warm the engine's layer cache, so the baseline is docker's best case
        baseline = best_of(plain, repeat=3)
    return [
        ("local build, nothing changed: builds / pushes", f"{built} / {pushed}", "-", "-", "0 / 0"),
        # One request per service for its build tag; with signing on, two more (its .sig and .att tags).
        ("local build, nothing changed: registry requests", str(calls),
         f"{minimum} ({minimum // 2} per service)", f"+{calls - minimum}", "+0"),
        ("local build, nothing changed: time (2 services)", f"{unchanged:.2f} s",
         f"{baseline:.2f} s (docker build of web, cached)", f"{unchanged / baseline:.2f}x", "< 1x"),
    ]


ROUNDS = 3  # promote/rollback pairs on the live cluster, each side; the medians are compared


def live_cluster() -> list[Row]:
    """Promote and rollback to verified on a real cluster beside `kubectl apply` + `kubectl rollout status`
    of the same objects (the median of ROUNDS each); the cluster's cold start from cached binaries to a
    Ready node."""
    import shutil

    import pytest
    import yaml

    from tests.cluster.conftest import ClusterWorkspace, Images, require_cluster

    kubectl = os.environ.get("DOCKYARD_KUBECTL") or shutil.which("kubectl")
    try:
        kubeconfig = require_cluster()
        if not kubectl:
            pytest.skip("no kubectl (./scripts/cluster env names one)")
        scratch = Path(tempfile.mkdtemp(prefix="dockyard-bench-cluster-"))
        images = Images(scratch / "images")
        first, second = images.web("ok"), images.web("ok2")
    except pytest.skip.Exception as skipped:
        return [("live cluster", "skipped", "-", "-", str(skipped))]
    rows: list[Row] = []
    ws = ClusterWorkspace(scratch / "ws", kubeconfig)
    try:
        ws.registry_of(first)
        ws.live_app("dev")
        ws.live_app("prod")
        for step in (("promote", "dev", "--from", "registry"), ("promote", "prod", "--from", "dev")):
            code, _, err = ws.dockyard(*step, "--yes")  # creates everything
            assert code == 0, err[-2000:]
        ws.registry_of(second)
        start = time.perf_counter()
        code, _, err = ws.dockyard("promote", "dev", "--from", "registry", "--yes")
        from_registry = time.perf_counter() - start
        assert code == 0, err[-2000:]
        before = subprocess.run(["docker", "image", "ls", "-q", "--no-trunc"], capture_output=True, text=True).stdout
        promotes, rollbacks = [], []
        for round_ in range(ROUNDS):  # prod goes from the first image to dev's second and back to release 1
            held = ["--release-hold"] if round_ else []  # a rollback holds prod against promotion
            start = time.perf_counter()
            code, _, err = ws.dockyard("promote", "prod", "--from", "dev", "--yes", *held)
            promotes.append(time.perf_counter() - start)
            assert code == 0, err[-2000:]
            start = time.perf_counter()
            code, _, err = ws.dockyard("rollback", "prod", "--to", "1", "--yes")
            rollbacks.append(time.perf_counter() - start)
            assert code == 0, err[-2000:]
        promote, rollback = statistics.median(promotes), statistics.median(rollbacks)
        after = subprocess.run(["docker", "image", "ls", "-q", "--no-trunc"], capture_output=True, text=True).stdout
        builds = len(set(after.split()) - set(before.split()))
        prod_ns = ws.namespace_of("prod")
        # Room on a two-core node (every pod requests a quarter core): dev's pods go before kubectl's come.
        ws.pulumi("destroy", "--yes", "--skip-preview", "-s", "dev")

        # The same objects, applied by kubectl to a namespace of their own (same labels).
        def run(*args: str, stdin: str | None = None) -> str:
            return subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), *args], input=stdin, text=True,
                                  capture_output=True, check=True, timeout=300).stdout
        objects = yaml.safe_load(run("get", "serviceaccount/web", "deployment/web", "service/web",
                                     "horizontalpodautoscaler/web", "networkpolicy/web", "ingress/web", "-n", prod_ns, "-o",
                                     "yaml"))["items"]
        namespace = yaml.safe_load(run("get", "namespace", prod_ns, "-o", "yaml"))
        baseline_ns = f"{ws.namespace}-kubectl"
        items = []
        for obj in [namespace, *objects]:
            meta = obj["metadata"]
            obj["metadata"] = {"name": baseline_ns if obj["kind"] == "Namespace" else meta["name"],
                               "labels": meta.get("labels", {}), "annotations": {
                                   k: v for k, v in (meta.get("annotations") or {}).items()
                                   if not k.startswith(("kubectl.", "pulumi.", "deployment.kubernetes.io"))}}
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = baseline_ns
            obj.pop("status", None)
            if obj["kind"] == "Service":
                obj["spec"] = {k: v for k, v in obj["spec"].items() if k not in ("clusterIP", "clusterIPs")}
            items.append(obj)

        def apply(image: str) -> float:
            for obj in items:
                if obj["kind"] == "Deployment":
                    obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
            start = time.perf_counter()
            run("apply", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
            run("rollout", "status", "-n", baseline_ns, "deployment/web", "--timeout=300s")
            return time.perf_counter() - start

        try:
            apply(first)  # creates everything, as dockyard's first promote did
            plain_promotes, plain_rollbacks = [], []
            for _ in range(ROUNDS):
                plain_promotes.append(apply(second))
                plain_rollbacks.append(apply(first))
            plain_promote, plain_rollback = statistics.median(plain_promotes), statistics.median(plain_rollbacks)
        finally:
            subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "delete", "namespace", baseline_ns,
                            "--wait=false"], capture_output=True)
        rows += [
            ("live cluster: promote prod --from dev to verified (web)", f"{promote:.1f} s (median of {ROUNDS})",
             f"{plain_promote:.1f} s (kubectl apply + rollout status)", f"{promote / plain_promote:.2f}x", "<= 1.25x"),
            ("live cluster: promote dev --from registry (stack outputs read by the engine)", f"{from_registry:.1f} s",
             f"{plain_promote:.1f} s (kubectl apply + rollout status)", f"{from_registry / plain_promote:.2f}x",
             "-"),
            ("live cluster: rollback to verified (web)", f"{rollback:.1f} s (median of {ROUNDS})",
             f"{plain_rollback:.1f} s (kubectl apply + rollout status)", f"{rollback / plain_rollback:.2f}x",
             "<= 1.25x"),
            ("live cluster: image builds during rollback", str(builds), "-", "-", "0"),
        ]
    finally:
        ws.remove_all()
    cluster = ROOT / "scripts" / "cluster"
    if os.environ.get("KUBECONFIG") == str(Path(os.environ.get("DOCKYARD_CACHE", Path.home() / ".cache" / "dockyard"))
                                           / "cluster" / "admin.kubeconfig"):
        subprocess.run([str(cluster), "down"], capture_output=True, check=True, timeout=300)
        start = time.perf_counter()
        up = subprocess.run([str(cluster), "up"], capture_output=True, text=True, check=True, timeout=300)
        cold = time.perf_counter() - start
        rows.append(("live cluster: cold start, cached binaries -> Ready node", f"{cold:.1f} s", "-", "-",
                     f"< 60 s ({up.stdout.strip()})"))
    return rows


def suite() -> list[Row]:
    rows: list[Row] = []
    for layer in ("tests/unit", "tests/services", "tests/release", "tests/registry", "tests/builds",
                  "tests/images", "tests/e2e"):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", layer], cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
        took = time.perf_counter() - start
        summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
        rows.append((f"suite: {layer}", f"{took:.1f} s", "-", "-", summary))
    return rows


def ui_dashboard() -> list[Row]:
    from benchmarks.ui import ui_rows  # the dashboard at 1,000 releases per environment (benchmarks/ui.py)

    return ui_rows()


# ----------------------------------------------------------------------------- report


def render(rows: list[Row]) -> str:
    header = ("what", "measured", "baseline", "ratio", "target / note")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-suite", action="store_true", help="do not time the test suite by layer")
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[Row] = []
    for section in (program_under_mocks, command_start, aws_calls, ecs_watch_calls, real_engine, local_builds,
                    live_cluster, ui_dashboard):
        print(f"bench: {section.__name__}...", file=sys.stderr)
        rows += section()
    if not args.skip_suite:
        print("bench: suite...", file=sys.stderr)
        rows += suite()
    table = render(rows)
    print(table)
    engine = subprocess.run(["pulumi", "version"], capture_output=True, text=True,
                            env={**os.environ, **__import__("dockyard.release.commands.build_local", fromlist=["x"]).local_engine_env(
                                Path(tempfile.gettempdir()) / "dockyard-bench-state", ROOT)}).stdout.strip()
    header = [
        "# dockyard benchmarks", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `benchmarks/run` in "
        f"{time.perf_counter() - started:.0f} s.", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}; pulumi CLI {engine or 'n/a'}; pulumi SDK {version('pulumi')}, "
        f"pulumi-aws {version('pulumi-aws')}, pulumi-kubernetes {version('pulumi-kubernetes')}, "
        f"boto3 {version('boto3')}, moto {version('moto')}.", "",
        "Each figure stands beside a baseline measured in the same run; ratios, not absolute times, are the "
        "result. Program times under mocks subtract the empty program's.", "",
    ]
    (ROOT / "benchmarks" / "RESULTS.md").write_text("\n".join(header) + table + "\n")


if __name__ == "__main__":
    main()
