"""The runtime keys (infra/config/runtime.py) on every target, under Pulumi mocks: the user a container
runs as (the image's own, recorded in the release or read by digest, or the service's keys), writable
paths, command and args, TCP checks, the startup grace, Kubernetes resources; and the refusals."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest

from dockyard import config
from dockyard.errors import ConfigError
from dockyard.targets.kubernetes.pod_security import restricted_violations
from dockyard.targets.nomad import job as nomad_job
from tests.support.pulumi_harness import DockyardMocks
from tests.unit.app_fixtures import IMAGES, REGISTRY, app, task_containers

# Packaged servers as their images are built (tests/fixtures/theirs/): nginx names its user, redis has its own uid.
NGINX = {"port": 8080, "healthCheckPath": "/", "desiredCount": 1, "runAsUser": 33, "runAsGroup": 33,
         "writablePaths": {"/run": "1Mi", "/var/lib/nginx": "16Mi", "/var/log/nginx": "8Mi"},
         "startupGracePeriod": 120,
         "kubernetesResources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}}
REDIS = {"port": 6379, "host": "redis.example.com", "desiredCount": 1, "healthCheckType": "tcp",
         "writablePaths": {"/var/lib/redis": "256Mi"}, "command": ["redis-server"],
         "args": ["--dir", "/var/lib/redis", "--protected-mode", "no"]}
SERVICES = {"web": NGINX, "redis": REDIS}
THEIR_IMAGES = {"web": IMAGES["web"], "redis": IMAGES["worker"].replace("/worker@", "/redis@")}


def released(users: dict[str, str], services: dict[str, Any] = SERVICES) -> DockyardMocks:
    """An SSM release of THEIR_IMAGES that recorded each image's user, as `dockyard promote` writes it."""
    manifest = {"schema": 1, "images": THEIR_IMAGES, "source": "registry:v1",
                "imageConfig": {s: {"user": u, "commit": f"{s}-commit"} for s, u in users.items()}}
    return DockyardMocks(parameters={"/dockyard/dev/release": (json.dumps(manifest), 3)})


def run(target: str, users: dict[str, str], services: dict[str, Any] = SERVICES, tmp_path=None, **extra):
    values: dict[str, Any] = {"dockyard:target": target, "dockyard:imageSource": "ssm", "dockyard:services": services,
                              "dockyard:database": False, **extra}
    if target == "kubernetes":
        values["dockyard:kubernetes"] = {"renderDir": "rendered/dev"}
    if target == "nomad":
        values["dockyard:nomad"] = {"renderDir": str(tmp_path)}
    return app("dev", mocks=released(users, services), **values)


def kube_pods(result) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: json.loads(json.dumps(r.inputs["spec"]["template"]["spec"]))
            for r in result.resources if r.type == "kubernetes:apps/v1:Deployment"}


def nomad_tasks(tmp_path) -> dict[str, dict]:
    spec = json.loads((tmp_path / "dockyard-dev.json").read_text())
    return {g["Name"]: {**g["Tasks"][0], "group": g} for g in spec["Job"]["TaskGroups"]}


# ----------------------------------------------------------------------------- the user


def test_each_target_runs_the_images_own_recorded_user(tmp_path):
    plain = {"web": {"port": 8080}, "redis": {"port": 6379, "host": "redis.example.com"}}
    users = {"web": "101:102", "redis": "999"}
    ecs = task_containers(run("ecs", users, plain))
    assert ecs["web"]["user"] == "101:102" and ecs["redis"]["user"] == "999"
    pods = kube_pods(run("kubernetes", users, plain))
    web = pods["web"]
    assert web["securityContext"]["runAsUser"] == 101 and web["securityContext"]["runAsGroup"] == 102
    assert web["securityContext"]["fsGroup"] == 102 and web["containers"][0]["securityContext"]["runAsUser"] == 101
    assert "runAsGroup" not in pods["redis"]["securityContext"] and pods["redis"]["securityContext"]["runAsUser"] == 999
    run("nomad", users, plain, tmp_path)
    tasks = nomad_tasks(tmp_path)
    assert tasks["web"]["User"] == "101:102" and tasks["redis"]["User"] == "999"
    for pod in pods.values():
        assert restricted_violations(pod) == []


def test_the_services_keys_win_over_the_image(tmp_path):
    users = {"web": "www-data", "redis": "999:999"}  # nginx names its user: runAsUser gives the number
    assert task_containers(run("ecs", users, {**SERVICES, "redis": {**REDIS, "healthCheckType": "http"}}))[
        "web"]["user"] == "33:33"
    assert kube_pods(run("kubernetes", users))["web"]["securityContext"]["runAsUser"] == 33
    run("nomad", users, SERVICES, tmp_path)
    assert nomad_tasks(tmp_path)["web"]["User"] == "33:33"


@pytest.mark.parametrize("target", ["ecs", "kubernetes", "nomad"])
@pytest.mark.parametrize("user, says", [("0", "would run as root"), ("", "would run as root (no USER)"),
                                        ("root:root", "would run as root"), ("nginx", "the user name 'nginx'")])
def test_a_release_whose_image_runs_as_root_or_a_name_stops_the_program(target, user, says, tmp_path):
    plain = {"web": {"port": 8080}, "redis": {"port": 6379, "host": "redis.example.com"}}
    with pytest.raises(pulumi.RunError, match=f"dockyard:services.redis.runAsUser: .*{re.escape(says)}"):
        run(target, {"web": "101", "redis": user}, plain, tmp_path)


def test_stack_following_ecs_and_nomad_read_the_user_by_digest_and_refuse_root(image_users, tmp_path):
    image_users[IMAGES["web"]] = "4242:4242"
    image_users[IMAGES["worker"]] = "0"
    services = {"web": {"port": 8080}, "worker": {"healthCheckCommand": ["true"]}}
    with pytest.raises(pulumi.RunError, match="worker.runAsUser: .*would run as root"):
        app("dev", **{"dockyard:services": services})
    image_users[IMAGES["worker"]] = "4343"
    assert {n: c["user"] for n, c in task_containers(app("dev", **{"dockyard:services": services})).items()} == {
        "web": "4242:4242", "worker": "4343"}
    app("dev", **{"dockyard:services": services, "dockyard:target": "nomad", "dockyard:nomad": {"renderDir": str(tmp_path)}})
    assert nomad_tasks(tmp_path)["worker"]["User"] == "4343"


def test_stack_following_kubernetes_leaves_the_user_to_the_image_and_the_kubelet(image_users):
    image_users[IMAGES["web"]] = "0"  # never asked: the kubelet refuses root itself (runAsNonRoot)
    result = app("dev", **{"dockyard:target": "kubernetes", "dockyard:kubernetes": {"renderDir": "r"}})
    for pod in kube_pods(result).values():
        assert pod["securityContext"]["runAsNonRoot"] is True and "runAsUser" not in pod["securityContext"]
        assert restricted_violations(pod) == []


# ----------------------------------------------------------------------------- the other keys


def test_ecs_writable_paths_command_args_and_grace():
    services = {"web": NGINX, "redis": {**REDIS, "healthCheckType": "http", "healthCheckPath": "/"}}
    result = run("ecs", {"web": "www-data", "redis": "999"}, services)
    containers = task_containers(result)
    web, redis = containers["web"], containers["redis"]
    assert {m["containerPath"] for m in web["mountPoints"]} == {"/run", "/var/lib/nginx", "/var/log/nginx"}
    assert web["readonlyRootFilesystem"] is True and web["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    tasks = {t.inputs["family"].rsplit("-", 1)[1]: t.inputs for t in result.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert {v["name"] for v in tasks["web"]["volumes"]} == {m["sourceVolume"] for m in web["mountPoints"]}
    assert redis["entryPoint"] == ["redis-server"] and redis["command"] == REDIS["args"]
    assert "entryPoint" not in web and "command" not in web
    assert web["healthCheck"]["startPeriod"] == 120
    ecs_services = {s.inputs["name"]: s.inputs for s in result.of_type("aws:ecs/service:Service")}
    assert ecs_services["web"]["healthCheckGracePeriodSeconds"] == 120
    assert ecs_services["redis"]["healthCheckGracePeriodSeconds"] == 60


def test_ecs_tasks_get_the_ephemeral_storage_their_writable_paths_add_up_to():
    big = {"web": {"port": 8080, "writablePaths": {"/data": "16Gi", "/cache": "8Gi", "/tmp": "64Mi"}},
           "redis": {"port": 8081, "path": "/s"}}
    tasks = {t.inputs["family"].rsplit("-", 1)[1]: t.inputs
             for t in run("ecs", {"web": "101", "redis": "101"}, big).of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert tasks["web"]["ephemeralStorage"] == {"sizeInGib": 25}
    assert "ephemeralStorage" not in tasks["redis"]  # Fargate's 20 GiB hold its /tmp
    too_big = {"web": {"port": 8080, "writablePaths": {f"/d{i}": "64Gi" for i in range(4)}}}
    with pytest.raises(ConfigError, match="writablePaths: 256 GiB in all; a Fargate task has at most 200 GiB"):
        config.load({"dockyard:role": "app", "dockyard:services": too_big}, stack="dev")


def test_ecs_refuses_a_tcp_check_it_has_nowhere_to_run():
    with pytest.raises(ConfigError, match="services.redis.healthCheckType: got 'tcp'; the ecs target"):
        config.load({"dockyard:role": "app", "dockyard:services": {"redis": REDIS}}, stack="dev")


def test_kubernetes_writable_paths_command_args_tcp_probe_grace_and_resources():
    pods = kube_pods(run("kubernetes", {"web": "www-data", "redis": "999:999"}))
    web, redis = pods["web"], pods["redis"]
    (nginx,) = web["containers"]
    assert {v["name"]: v["emptyDir"]["sizeLimit"] for v in web["volumes"]} == {
        "w-run": "1Mi", "w-var-lib-nginx": "16Mi", "w-var-log-nginx": "8Mi"}
    assert {m["mountPath"] for m in nginx["volumeMounts"]} == {"/run", "/var/lib/nginx", "/var/log/nginx"}
    assert nginx["resources"] == {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
    assert nginx["startupProbe"]["failureThreshold"] * nginx["startupProbe"]["periodSeconds"] == 120
    assert nginx["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"} and "command" not in nginx
    (server,) = redis["containers"]
    assert server["command"] == ["redis-server"] and server["args"] == REDIS["args"]
    assert server["readinessProbe"]["tcpSocket"] == {"port": "http"} and "httpGet" not in server["livenessProbe"]
    assert server["startupProbe"]["failureThreshold"] * server["startupProbe"]["periodSeconds"] == 60
    assert server["resources"]["limits"] == {"cpu": "250m", "memory": "512Mi"}  # from cpu/memory, as before
    for pod in pods.values():
        assert restricted_violations(pod) == []
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True and context["runAsNonRoot"] is True


def test_nomad_tmpfs_per_path_entrypoint_args_tcp_check_and_grace(tmp_path):
    run("nomad", {"web": "www-data", "redis": "999:999"}, SERVICES, tmp_path)
    tasks = nomad_tasks(tmp_path)
    web, redis = tasks["web"], tasks["redis"]
    assert {m["target"]: m["tmpfs_options"]["size"] for m in web["Config"]["mount"]} == {
        "/run": 2**20, "/var/lib/nginx": 16 * 2**20, "/var/log/nginx": 8 * 2**20}
    assert all(m["type"] == "tmpfs" and m["readonly"] is False for m in web["Config"]["mount"])
    assert redis["Config"]["entrypoint"] == ["redis-server"] and redis["Config"]["args"] == REDIS["args"]
    (check,) = redis["group"]["Services"][0]["Checks"]
    assert check["Type"] == "tcp" and "Path" not in check
    assert web["group"]["Update"]["HealthyDeadline"] == 180 * nomad_job.SECOND  # 120 s grace + 60 fits 180
    slow = {**SERVICES, "web": {**NGINX, "startupGracePeriod": 600}}
    run("nomad", {"web": "www-data", "redis": "999"}, slow, tmp_path)
    assert nomad_tasks(tmp_path)["web"]["group"]["Update"]["HealthyDeadline"] == 660 * nomad_job.SECOND
    slow_settings = config.load({"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:services": slow},
                                stack="dev")
    assert nomad_job.deployment_seconds(slow_settings) >= 2 * 660  # a canary, then the one allocation
    for task in tasks.values():
        assert task["Config"]["readonly_rootfs"] is True and task["Config"]["cap_drop"] == ["all"]
        assert task["Config"]["security_opt"] == ["no-new-privileges"]


@pytest.mark.parametrize("key, value, message", [
    ("runAsUser", 0, "runAsUser: got 0; dockyard runs no container as root"),
    ("runAsUser", "www-data", "runAsUser: got 'www-data'; expected a whole number"),
    ("runAsGroup", -1, "runAsGroup: got -1"),
    ("writablePaths", {"tmp": "64Mi"}, "writablePaths.tmp: got 'tmp'; expected an absolute"),
    ("writablePaths", {"/": "64Mi"}, "writablePaths./: got '/'"),
    ("writablePaths", {"/var/../etc": "64Mi"}, "expected an absolute, normalized directory"),
    ("writablePaths", {"/tmp": "64MB"}, "writablePaths./tmp: got '64MB'; expected a size from 1Mi to 64Gi"),
    ("writablePaths", {"/tmp": "128Gi"}, "expected a size from 1Mi to 64Gi"),
    ("writablePaths", {"/var": "1Mi", "/var/lib": "1Mi"}, "/var/lib and /var overlap"),
    ("command", "nginx -g daemon off;", "command: got 'nginx -g daemon off;'; expected a command as a list"),
    ("args", [1, 2], "args: got [1, 2]; expected a list of strings"),
    ("healthCheckType", "grpc", "healthCheckType: got 'grpc'; expected one of http, tcp"),
    ("startupGracePeriod", 7200, "startupGracePeriod: got 7200; expected a whole number from 0 to 3600"),
    ("kubernetesResources", {"requests": {"cpu": "1 core", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
     "kubernetesResources.requests.cpu: got '1 core'"),
    ("kubernetesResources", {"requests": {"cpu": "1", "memory": "1Gi"}}, "kubernetesResources.limits.memory is missing"),
    ("kubernetesResources", {"requests": {"gpu": "1"}}, "kubernetesResources.requests.gpu is not a setting here"),
])
def test_bad_runtime_keys_fail_in_one_line_naming_the_key(key, value, message):
    with pytest.raises(ConfigError) as err:
        config.load({"dockyard:role": "app", "dockyard:target": "kubernetes",
                     "dockyard:services": {"web": {"port": 8080, key: value}}}, stack="dev")
    assert f"dockyard:services.web.{message}" in str(err.value) or message in str(err.value)
    assert "\n" not in err.value.message


def test_a_tcp_check_needs_a_port_and_excludes_a_command():
    for entry, says in (({"healthCheckType": "tcp"}, "tcp connects to the service's port"),
                        ({"port": 1, "healthCheckType": "tcp", "healthCheckCommand": ["true"]}, "not both")):
        with pytest.raises(ConfigError, match=says):
            config.load({"dockyard:role": "app", "dockyard:target": "nomad",
                         "dockyard:services": {"w": entry}}, stack="dev")


def test_their_services_objects_pass_the_strict_schema_and_restricted():
    import kubernetes_validate

    from tests.support import theirs
    from tests.unit.test_app_kubernetes import K8S_VERSION, objects

    services = {**theirs.SERVICES, "hello": {**theirs.SERVICES["hello"], "runAsUser": theirs.SAMPLE_USER}}
    images = {"nginx": IMAGES["web"], "redis": THEIR_IMAGES["redis"], "hello": IMAGES["worker"]}
    manifest = {"schema": 1, "images": images, "imageConfig": {"nginx": {"user": "www-data"},
                                                                "redis": {"user": "999:999"}, "hello": {"user": ""}}}
    mocks = DockyardMocks(parameters={"/dockyard/dev/release": (json.dumps(manifest), 1)})
    result = app("dev", mocks=mocks, **{"dockyard:target": "kubernetes", "dockyard:imageSource": "ssm",
                                        "dockyard:services": services, "dockyard:kubernetes": {"renderDir": "r"}})
    for obj in objects(result):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        if obj["kind"] == "Deployment":
            assert restricted_violations(obj["spec"]["template"]["spec"]) == []
    users = {n: p["securityContext"]["runAsUser"] for n, p in kube_pods(result).items()}
    assert users == {"nginx": 33, "redis": 999, "hello": theirs.SAMPLE_USER}
