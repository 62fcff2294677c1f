"""The Nomad target: the job specification (pure), its config keys, and the program under Pulumi mocks."""

from __future__ import annotations

import json

import pytest

from dockyard import config
from dockyard.targets.nomad import job as nomad_job
from dockyard.errors import ConfigError
from tests.unit.app_fixtures import IMAGES, SERVICES, app

NOMAD_JOB = "nomad:index/job:Job"


def settings(stack: str = "dev", _secret: tuple[str, ...] = (), **values):
    raw = {"dockyard:role": "app", "dockyard:target": "nomad", "dockyard:imageSource": "file",
           "dockyard:services": SERVICES, **{f"dockyard:{k}": v for k, v in values.items()}}
    return config.load(raw, stack=stack, secret_keys=_secret)


def groups(spec: dict) -> dict[str, dict]:
    return {g["Name"]: g for g in spec["Job"]["TaskGroups"]}


# ----------------------------------------------------------------------------- the job (pure)


def test_every_service_is_a_group_running_its_release_digest_hardened():
    spec = nomad_job.job(settings(), IMAGES, "file:3")
    assert spec["Job"]["ID"] == "dockyard-dev" and spec["Job"]["Type"] == "service"
    assert spec["Job"]["Meta"][nomad_job.RELEASE_META] == "file:3"
    assert nomad_job.images_of(spec) == IMAGES
    for name, group in groups(spec).items():
        (task,) = group["Tasks"]
        assert "@sha256:" in task["Config"]["image"]
        assert task["Driver"] == "docker"
        assert task["User"] == "10001:10001"
        assert task["Config"]["readonly_rootfs"] is True
        assert task["Config"]["cap_drop"] == ["all"]
        assert task["Config"]["mount"] == [{"type": "tmpfs", "target": "/tmp", "readonly": False,
                                            "tmpfs_options": {"size": 64 * 1024 * 1024}}]
        assert task["Resources"] == {"CPU": 250, "MemoryMB": 512}
        assert {"LTarget": "${attr.cpu.arch}", "RTarget": "amd64", "Operand": "="} in group["Constraints"]
        assert group["RestartPolicy"]["Mode"] == "fail"
        assert group["ReschedulePolicy"]["Unlimited"] is True
    assert groups(spec)["web"]["Count"] == 2 and groups(spec)["worker"]["Count"] == 1


def test_platform_and_size_come_from_the_service_settings():
    services = {"web": {"port": 8080, "cpu": 1024, "memory": 2048, "platform": "linux/arm64"}}
    spec = nomad_job.job(settings(services=services), {"web": IMAGES["web"]}, "file:1")
    web = groups(spec)["web"]
    assert {"LTarget": "${attr.cpu.arch}", "RTarget": "arm64", "Operand": "="} in web["Constraints"]
    assert web["Tasks"][0]["Resources"] == {"CPU": 1000, "MemoryMB": 2048}


def test_routed_services_register_an_http_check_on_the_health_path_and_workers_use_task_states():
    spec = nomad_job.job(settings(), IMAGES, "file:1")
    web, worker = groups(spec)["web"], groups(spec)["worker"]
    (service,) = web["Services"]
    assert service["Provider"] == "nomad" and service["PortLabel"] == "http"
    assert [(c["Type"], c["Path"]) for c in service["Checks"]] == [("http", "/healthz")]
    assert web["Networks"] == [{"Mode": "host", "DynamicPorts": [{"Label": "http", "To": 8080}]}]
    assert web["Tasks"][0]["Config"]["ports"] == ["http"]
    assert web["Tasks"][0]["Env"]["PORT"] == "8080"
    assert web["Update"]["HealthCheck"] == "checks"
    assert worker["Services"] == [] and worker["Networks"] == []
    assert worker["Update"]["HealthCheck"] == "task_states"
    assert worker["Tasks"][0]["Config"]["healthchecks"] == {"disable": False}


def test_base_environments_deploy_a_canary_and_every_environment_reverts_on_failure():
    base = groups(nomad_job.job(settings(), IMAGES, "file:1"))["web"]["Update"]
    assert (base["Canary"], base["AutoPromote"], base["AutoRevert"]) == (1, True, True)
    assert base["ProgressDeadline"] == 0 and base["HealthyDeadline"] > base["MinHealthyTime"]
    branch = groups(nomad_job.job(settings("branch-fix-login", ephemeral=True), IMAGES, "file:1"))["web"]["Update"]
    assert (branch["Canary"], branch["AutoPromote"], branch["AutoRevert"]) == (0, False, True)


def test_branch_stacks_get_their_own_job_and_service_names():
    base, branch = settings("dev"), settings("branch-dev", ephemeral=True)
    assert nomad_job.job_id(base.stack) != nomad_job.job_id(branch.stack)
    names = {nomad_job.service_name("web", s) for s in ("dev", "branch-dev", "Dev", "d.ev", "d-ev")}
    assert len(names) == 5
    long = nomad_job.service_name("web", "branch-" + "x" * 90)
    assert len(long) <= 63 and long != nomad_job.service_name("web", "branch-" + "x" * 89)


def test_settings_reach_the_job():
    spec = nomad_job.job(settings(nomad={"namespace": "shop", "region": "eu", "datacenters": ["a", "b"]}),
                         IMAGES, "file:1")["Job"]
    assert (spec["Namespace"], spec["Region"], spec["Datacenters"]) == ("shop", "eu", ["a", "b"])


def test_release_number_is_read_back_from_the_job_meta():
    assert nomad_job.release_number({nomad_job.RELEASE_META: "file:12"}) == 12
    assert nomad_job.release_number({nomad_job.RELEASE_META: "stack:latest"}) is None
    assert nomad_job.release_number(None) is None


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("nomad, message", [
    ({"token": "s3cret"}, "dockyard:nomad.token is stored in plain text"),
    ({"adress": "http://x:4646"}, "dockyard:nomad.adress is not a dockyard setting"),
    ({"address": "127.0.0.1:4646"}, "dockyard:nomad.address: got '127.0.0.1:4646'"),
    ({"namespace": "bad name"}, "dockyard:nomad.namespace: got 'bad name'"),
    ({"datacenters": []}, "dockyard:nomad.datacenters: got []"),
    ({"datacenters": ["dc1", "dc1"]}, "a datacenter is listed twice"),
    ({"renderDir": ""}, "dockyard:nomad.renderDir"),
])
def test_bad_nomad_settings_fail_in_one_line_naming_the_key(nomad, message):
    with pytest.raises(ConfigError) as err:
        settings(nomad=nomad)
    assert message in err.value.message


def test_token_as_a_secret_and_defaults():
    assert settings(nomad={"token": "s3cret"}, _secret=("dockyard:nomad",)).nomad.token == "s3cret"
    defaults = settings().nomad
    assert (defaults.address, defaults.namespace, defaults.region, defaults.datacenters) == \
        (None, "default", "global", ("*",))


def test_nomad_target_refuses_settings_it_cannot_honour():
    with pytest.raises(ConfigError, match="dockyard:services.web.secrets.TOKEN"):
        settings(services={"web": {"port": 8080, "secrets": {"TOKEN": "/app/token"}}})
    with pytest.raises(ConfigError, match="dockyard:database"):
        settings(database={"secretName": "db"})


# ----------------------------------------------------------------------------- program under mocks


def test_provider_mode_registers_one_job_that_waits_for_its_deployment():
    run = app("dev", **{"dockyard:target": "nomad",
                        "dockyard:nomad": {"address": "http://127.0.0.1:4646", "token": "s3cret"}},
              secret_keys=("dockyard:nomad",))
    (job,) = run.of_type(NOMAD_JOB)
    assert job.inputs["json"] is True and job.inputs["detach"] is False
    spec = json.loads(job.inputs["jobspec"])
    assert nomad_job.images_of(spec) == IMAGES
    (provider,) = run.of_type("pulumi:providers:nomad")
    assert provider.inputs["address"] == "http://127.0.0.1:4646"
    assert not [t for t in run.types() if t.startswith(("aws:", "kubernetes:", "docker:"))]
    assert run.outputs["nomadJob"]["id"] == "dockyard-dev"
    assert run.outputs["images"] == IMAGES


def test_render_mode_writes_the_job_as_json_and_registers_no_job(tmp_path):
    run = app("dev", **{"dockyard:target": "nomad", "dockyard:nomad": {"renderDir": str(tmp_path / "jobs")}})
    assert run.of_type(NOMAD_JOB) == []
    written = json.loads((tmp_path / "jobs" / "dockyard-dev.json").read_text())
    assert nomad_job.images_of(written) == IMAGES
    assert run.outputs["nomadJob"]["file"] == str(tmp_path / "jobs" / "dockyard-dev.json")
    assert run.outputs["renderDir"] == str(tmp_path / "jobs")


def test_branch_stack_job_is_its_own(tmp_path):
    run = app("branch-fix", **{"dockyard:target": "nomad", "dockyard:ephemeral": True,
                               "dockyard:nomad": {"renderDir": str(tmp_path)}})
    assert run.outputs["nomadJob"]["id"] == "dockyard-branch-fix"
    written = json.loads((tmp_path / "dockyard-branch-fix.json").read_text())
    assert {g["Name"]: g["Count"] for g in written["Job"]["TaskGroups"]} == {"web": 1, "worker": 1}
