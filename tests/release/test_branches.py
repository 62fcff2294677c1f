"""Branch stacks: up from a base with overrides, preview comment, destroy, gc; non-branch stacks refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import yaml

from dockyard import naming
from tests.release.conftest import REGION, images, ref

OVERRIDE = ref("web", "feature")


def seeded(d) -> None:
    d("promote", "dev", "--from", "registry", "--no-deploy", "--yes")


def test_branch_up_seeds_from_the_base_with_overrides_and_deploys(dockyard):
    seeded(dockyard)
    code, out, err = dockyard("branch", "up", "feature/Login-Page", "--image", f"web={OVERRIDE}", "--json")
    assert code == 0, err
    stack = out["stack"]
    assert stack.startswith("branch-feature-login-page-") and out["deployed"] is True
    assert out["images"] == {**images("seed"), "web": OVERRIDE}
    assert dockyard.engine.deployed[stack]["images"] == out["images"]
    config = yaml.safe_load((dockyard.project.dir / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert config["dockyard:ephemeral"] is True
    assert config["dockyard:shareFrom"] == "organization/dockyard/dev"
    backend = dockyard.project.environment("dev").store_kind
    assert config["dockyard:imageSource"] == backend
    env = dockyard.project.environment(stack)
    assert env.settings.ephemeral and env.settings.share_from == "organization/dockyard/dev"
    _, history, _ = dockyard("history", stack, "--json")
    assert history["releases"][0]["source"] == "dev:v1+branch"
    # again, unchanged: no new release, one more up
    code, again, _ = dockyard("branch", "up", "feature/Login-Page", "--image", f"web={OVERRIDE}", "--json")
    assert again["version"] == out["version"]


def test_branch_shares_from_the_base_in_the_organization_the_engine_reports(dockyard):
    seeded(dockyard)
    dockyard.engine.organization = "acme"
    code, out, err = dockyard("branch", "up", "fix-org", "--json")
    assert code == 0, err
    config = yaml.safe_load((dockyard.project.dir / f"Pulumi.{out['stack']}.yaml").read_text())["config"]
    assert config["dockyard:shareFrom"] == "acme/dockyard/dev"


def test_branch_up_refuses_bad_overrides(dockyard):
    seeded(dockyard)
    for image, message in [("web=web:latest", "has no digest"), ("web", "expected SERVICE=REF"),
                           (f"api={OVERRIDE}", "--image api: dev runs no such service")]:
        code, out, _ = dockyard("branch", "up", "fix-x", "--image", image, "--json")
        assert code == 2 and message in out["error"]["message"], out
    assert not (dockyard.project.dir / "Pulumi.branch-fix-x.yaml").exists()


def test_preview_prints_one_marked_comment(dockyard):
    seeded(dockyard)
    _, up, _ = dockyard("branch", "up", "fix-x", "--json")
    code, out, _ = dockyard("branch", "preview", "fix-x", "--json")
    assert code == 0 and out["changes"] == {"create": 2, "same": 3}
    assert out["comment"].startswith(f"<!-- dockyard-preview:{up['stack']} -->")
    assert "create 2" in out["comment"]


def test_destroy_removes_stack_config_and_release(dockyard):
    seeded(dockyard)
    _, up, _ = dockyard("branch", "up", "fix-x", "--json")
    stack = up["stack"]
    code, out, _ = dockyard("branch", "destroy", "fix-x", "--json")
    assert code == 0 and out == {"branch": "fix-x", "stack": stack, "action": "destroy", "destroyed": True,
                               "removedImages": [], "skippedImages": []}
    assert dockyard.engine.destroyed == [stack]
    assert not (dockyard.project.dir / f"Pulumi.{stack}.yaml").exists()
    env_store_gone = dockyard("history", stack, "--json")
    assert env_store_gone[0] == 2


def test_destroy_and_gc_refuse_non_branch_stacks(dockyard):
    code, out, _ = dockyard("branch", "destroy", "prod", "--json")
    assert code == 2 and "not a branch stack" in out["error"]["message"]
    code, out, _ = dockyard("branch", "destroy", "nope", "--json")
    assert code == 2 and "no branch stack" in out["error"]["message"]
    code, out, _ = dockyard("branch", "gc", "--json")
    assert code == 2 and "--keep" in out["error"]["message"]
    assert dockyard.engine.destroyed == []


def test_gc_destroys_branches_that_are_gone_and_keeps_the_rest(dockyard):
    seeded(dockyard)
    stacks = {b: dockyard("branch", "up", b, "--json")[1]["stack"] for b in ("keep-me", "gone-a", "gone-b")}
    code, out, _ = dockyard("branch", "gc", "--keep", "keep-me", "--json")
    assert code == 0
    assert sorted(out["destroyed"]) == sorted([stacks["gone-a"], stacks["gone-b"]])
    assert out["kept"] == [stacks["keep-me"]]
    assert "prod" not in dockyard.engine.destroyed


def test_gc_idle_for_looks_at_the_last_update(dockyard):
    seeded(dockyard)
    old = dockyard("branch", "up", "old", "--json")[1]["stack"]
    fresh = dockyard("branch", "up", "fresh", "--json")[1]["stack"]
    now = datetime.now(timezone.utc)
    dockyard.engine.last_update = {old: now - timedelta(days=10), fresh: now - timedelta(hours=1)}
    code, out, _ = dockyard("branch", "gc", "--idle-for", "7d", "--json")
    assert code == 0 and out["destroyed"] == [old] and out["kept"] == [fresh]
    code, out, _ = dockyard("branch", "gc", "--idle-for", "a week", "--json")
    assert code == 2 and "expected a duration" in out["error"]["message"]


def test_destroy_on_a_clean_checkout_recreates_the_config_from_the_base(dockyard):
    seeded(dockyard)
    stack = dockyard("branch", "up", "ci-only", "--json")[1]["stack"]
    (dockyard.project.dir / f"Pulumi.{stack}.yaml").unlink()  # a fresh CI runner never had it
    code, out, _ = dockyard("branch", "destroy", "ci-only", "--json")
    assert code == 2 and "--base" in out["error"]["hint"]
    code, out, _ = dockyard("branch", "destroy", "ci-only", "--base", "dev", "--json")
    assert code == 0 and dockyard.engine.destroyed == [stack]
    assert not (dockyard.project.dir / f"Pulumi.{stack}.yaml").exists()


def test_gc_on_a_clean_checkout_destroys_the_right_stack(dockyard):
    seeded(dockyard)
    stack = dockyard("branch", "up", "bar", "--json")[1]["stack"]
    (dockyard.project.dir / f"Pulumi.{stack}.yaml").unlink()
    code, out, _ = dockyard("branch", "gc", "--keep", "foo", "--base", "dev", "--json")
    assert code == 0 and out["destroyed"] == [stack]
    assert dockyard.engine.destroyed == [stack]


def test_gc_idle_for_skips_stacks_the_backend_does_not_know(dockyard):
    seeded(dockyard)
    stack = dockyard("branch", "up", "local-only", "--json")[1]["stack"]
    dockyard.engine.deployed.pop(stack)  # its config is here, its stack is not in the backend
    code, out, _ = dockyard("branch", "gc", "--idle-for", "1d", "--json")
    assert code == 0 and out == {"destroyed": [], "kept": [stack], "removedImages": [], "skippedImages": []}


def test_secret_config_is_copied_by_the_engine_never_as_ciphertext(dockyard):
    seeded(dockyard)
    path = dockyard.project.dir / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["aws:secretKey"] = {"secure": "v1:ciphertext-of-dev"}
    path.write_text(yaml.safe_dump(data))
    code, out, err = dockyard("branch", "up", "with-secrets", "--json")
    assert code == 0, err
    stack = out["stack"]
    assert dockyard.engine.copied_secrets == ("dev", stack, ["aws:secretKey"])
    assert "ciphertext-of-dev" not in (dockyard.project.dir / f"Pulumi.{stack}.yaml").read_text()


# ----------------------------------------------------------------------------- listener ports on a shared ALB


def shared_load_balancer(d, listener_ports=(80,)) -> str:
    """The base's ALB in moto, with listeners on `listener_ports`, exported as `branch up` reads it."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")
               ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arn = elbv2.create_load_balancer(Name="dky-dev", Subnets=subnets, Type="application")["LoadBalancers"][0][
        "LoadBalancerArn"]
    for port in listener_ports:
        add_listener(arn, port)
    d.engine.deployed["dev"] = {"loadBalancer": {"arn": arn, "dnsName": "dky-dev.example", "listenerArn": "x"}}
    return arn


def add_listener(arn: str, port: int, stack: str | None = None) -> None:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    listener = elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])["Listeners"][0]
    if stack:
        elbv2.add_tags(ResourceArns=[listener["ListenerArn"]], Tags=[{"Key": "dockyard:stack", "Value": stack}])


def listener_port(d, stack: str) -> int:
    return yaml.safe_load((d.project.dir / f"Pulumi.{stack}.yaml").read_text())["config"]["dockyard:listenerPort"]


def test_branch_listener_ports_never_collide_and_stay_with_their_branch(dockyard):
    seeded(dockyard)
    taken = naming.branch_listener_port(naming.branch_stack("feature-a"))  # its preferred port: someone else's
    arn = shared_load_balancer(dockyard, listener_ports=(80, taken))
    code, out, err = dockyard("branch", "up", "feature-a", "--json")
    assert code == 0, err
    first = listener_port(dockyard, out["stack"])
    assert first not in (80, taken) and 10000 <= first <= 10489
    add_listener(arn, first, stack=out["stack"])  # what the engine created
    second_stack = dockyard("branch", "up", "feature-b", "--json")[1]["stack"]
    assert listener_port(dockyard, second_stack) not in (80, taken, first)
    # up again, also from a clean checkout (no config file): the branch keeps its own listener's port
    assert dockyard("branch", "up", "feature-a", "--json")[0] == 0 and listener_port(dockyard, out["stack"]) == first
    (dockyard.project.dir / f"Pulumi.{out['stack']}.yaml").unlink()
    assert dockyard("branch", "up", "feature-a", "--json")[0] == 0 and listener_port(dockyard, out["stack"]) == first


def test_a_full_load_balancer_refuses_a_new_branch_and_names_gc(dockyard):
    seeded(dockyard)
    shared_load_balancer(dockyard, listener_ports=(80, *range(11000, 11049)))  # 50: the ALB quota
    code, out, _ = dockyard("branch", "up", "one-too-many", "--json")
    assert code == 3 and out["error"]["code"] == "conflict"
    assert "50 listeners" in out["error"]["message"] and "dockyard branch gc" in out["error"]["message"]
    assert not (dockyard.project.dir / f"Pulumi.{naming.branch_stack('one-too-many')}.yaml").exists()
