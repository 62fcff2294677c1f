"""Settings for both roles: defaults, every key, and one precise message for every bad value."""

from __future__ import annotations

import json

import pytest

from dockyard import config, naming
from dockyard.config import AppSettings, DatabaseSettings, RegistrySettings, SecretDatabaseSettings, SharedDatabase
from dockyard.errors import ConfigError

DIGEST = "sha256:" + "c" * 64


def raw(values: dict) -> dict:
    return {f"dockyard:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def registry(**values) -> RegistrySettings:
    return config.load(raw({"role": "registry", **values}), stack="registry", discovered_services=["web", "worker"])


def app(stack: str = "prod", secret_keys=(), **values) -> AppSettings:
    values.setdefault("services", {"web": {"port": 8080}, "worker": {}})
    return config.load(raw({"role": "app", **values}), stack=stack, secret_keys=secret_keys)


def refused(message: str, loader, **values) -> None:
    with pytest.raises(ConfigError) as err:
        loader(**values)
    assert message in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- registry


def test_registry_defaults():
    s = registry()
    assert s.services == ("web", "worker")
    assert s.builds["web"].context == "images/web"
    assert s.builds["web"].dockerfile == "images/web/Dockerfile"
    assert s.builds["web"].platform == "linux/amd64"
    assert (s.registry, s.publish, s.keep_images, s.untagged_expiry_days) == ("ecr", True, 30, 7)
    assert s.release_parameter == "/dockyard/registry/release"
    assert s.prebuilt == {}


def test_registry_every_key():
    s = registry(services={"api": {"context": "src/api", "dockerfile": "src/api/Dockerfile.prod",
                                   "platform": "linux/arm64", "buildArgs": {"PY": 3.12, "DEBUG": False}}},
                 prebuilt={"api": f"ghcr.io/acme/api@{DIGEST}"}, registry="external", publish="false",
                 keepImages="50", untaggedExpiryDays=14, releaseParameter="/acme/registry/release")
    assert s.services == ("api",)
    assert s.builds["api"].build_args == {"PY": "3.12", "DEBUG": "false"}
    assert s.prebuilt == {"api": f"ghcr.io/acme/api@{DIGEST}"}
    assert (s.registry, s.publish, s.keep_images, s.untagged_expiry_days) == ("external", False, 50, 14)
    assert s.release_parameter == "/acme/registry/release"


def test_registry_bare_digest_is_allowed_in_managed_repositories_only():
    assert registry(prebuilt={"web": DIGEST}).prebuilt == {"web": DIGEST}
    refused("give the whole reference", registry, prebuilt={"web": DIGEST, "worker": DIGEST}, registry="external")


def test_registry_without_services_anywhere():
    with pytest.raises(ConfigError, match="no services"):
        config.load(raw({"role": "registry"}), stack="registry", discovered_services=[])


@pytest.mark.parametrize("values, message", [
    ({"prebuilt": {"web": "web:latest"}}, "dockyard:prebuilt.web: web:latest has no digest"),
    ({"prebuilt": {"api": f"web@{DIGEST}"}}, "dockyard:prebuilt.api: 'api' is not a service"),
    ({"prebuilt": {"web": 3}}, "dockyard:prebuilt.web: got 3"),
    ({"prebuilt": "web"}, "dockyard:prebuilt: got 'web'; expected an object"),
    ({"registry": "gcr"}, "dockyard:registry: got 'gcr'; expected one of ecr, oci, external"),
    ({"registry": "external", "prebuilt": {"web": f"ghcr.io/a/web@{DIGEST}"}}, "no image for worker"),
    ({"publish": "yes"}, "dockyard:publish: got 'yes'; expected true or false"),
    ({"keepImages": "1001"}, "dockyard:keepImages: got '1001'; expected a whole number from 1 to 1000"),
    ({"untaggedExpiryDays": "1.5"}, "dockyard:untaggedExpiryDays: got '1.5'"),
    ({"services": {"web": {"platform": "windows/amd64"}}}, "dockyard:services.web.platform: got 'windows/amd64'"),
    ({"services": {"web": {"buildArgs": {"bad-name": "x"}}}}, "dockyard:services.web.buildArgs.bad-name"),
    ({"services": {"web": {"contxt": "x"}}}, "dockyard:services.web.contxt is not a setting here"),
    ({"services": {"Web": {}}}, "dockyard:services: service name 'Web' is not valid"),
    ({"services": "{broken"}, "dockyard:services: got '{broken'; expected valid JSON"),
    ({"target": "ecs"}, "dockyard:target applies to role app, not to role registry"),
    ({"releaseParameter": "release"}, "dockyard:releaseParameter: SSM parameter name 'release' is not valid"),
])
def test_registry_bad_values(values, message):
    refused(message, registry, **values)


# ----------------------------------------------------------------------------- role and keys


def test_role_is_required_and_checked():
    with pytest.raises(ConfigError, match="dockyard:role is not set"):
        config.load({}, stack="dev")
    with pytest.raises(ConfigError, match="dockyard:role: got 'worker'; expected one of registry, app"):
        config.load(raw({"role": "worker"}), stack="dev")


def test_unknown_key_lists_the_known_keys():
    with pytest.raises(ConfigError) as err:
        app(imageSorce="ssm")
    assert "dockyard:imageSorce is not a dockyard setting" in err.value.message
    assert "imageSource" in err.value.message and "registryStack" in err.value.message


def test_other_namespaces_are_ignored():
    settings = config.load({**raw({"role": "app", "services": {"web": {}}}), "aws:region": "eu-west-1"}, stack="dev")
    assert settings.role == "app"


def test_bad_stack_name():
    with pytest.raises(ConfigError, match="stack name 'a b' is not valid"):
        config.load(raw({"role": "registry"}), stack="a b", discovered_services=["web"])


# ----------------------------------------------------------------------------- app


def test_app_defaults():
    s = app()
    assert (s.target, s.image_source, s.ephemeral, s.share_from) == ("ecs", "ssm", False, None)
    assert s.release_parameter == "/dockyard/prod/release"
    assert s.release_dir == ".dockyard/releases/prod"
    assert s.registry_stack is None  # only the engine knows the stack's organization
    assert s.database == DatabaseSettings()
    assert s.kubernetes.namespace == "dockyard" and s.kubernetes.create_namespace
    assert s.log_retention_days == 30 and s.certificate_arn is None
    assert not s.network.existing and s.network.availability_zones == 2 and s.network.nat_gateways == 1
    web, worker = s.services["web"], s.services["worker"]
    assert (web.port, web.cpu, web.memory, web.health_check_path) == (8080, 256, 512, "/healthz")
    assert (web.desired_count, web.min_count, web.max_count) == (2, 2, 4)
    assert worker.port is None and not worker.routed


def test_registry_stack_defaults_to_the_stacks_own_organization():
    load = lambda **values: config.load(raw({"role": "app", "services": {"web": {}}, **values}), stack="dev",
                                        organization="acme", project="dockyard")
    assert load().registry_stack == "acme/dockyard/registry"
    assert load(registryStack="shared/dockyard/registry").registry_stack == "shared/dockyard/registry"


def test_app_every_service_key():
    s = app(services={"web": {"port": "9000", "cpu": 1024, "memory": 3072, "desiredCount": 3, "minCount": 2,
                              "maxCount": 10, "healthCheckPath": "/ready", "host": "api.example.com", "path": "/v1/*",
                              "environment": {"LOG_LEVEL": "info", "WORKERS": 4},
                              "secrets": {"API_TOKEN": "/acme/prod/token",
                                          "DB_URL": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCd"}}})
    web = s.services["web"]
    assert (web.port, web.cpu, web.memory, web.desired_count, web.min_count, web.max_count) == (9000, 1024, 3072, 3, 2, 10)
    assert (web.health_check_path, web.host, web.path) == ("/ready", "api.example.com", "/v1/*")
    assert web.environment == {"LOG_LEVEL": "info", "WORKERS": "4"}
    assert web.secrets["API_TOKEN"] == "/acme/prod/token"


def test_app_every_stack_key():
    s = app(stack="branch-x", target="kubernetes", imageSource="file", releaseDir="releases/x",
            registryStack="acme/dockyard/registry", releaseParameter="/acme/x/release", ephemeral=True,
            shareFrom="acme/dockyard/dev", database={"secretName": "db-conn"},
            kubernetes={"namespace": "apps", "createNamespace": False, "renderDir": "out/x", "ingressClass": "nginx",
                        "host": "x.example.com", "tlsSecret": "x-tls"},
            logRetentionDays=7, certificateArn="arn:aws:acm:us-east-1:123456789012:certificate/abc-123")
    assert (s.target, s.image_source, s.release_dir, s.ephemeral) == ("kubernetes", "file", "releases/x", True)
    assert (s.registry_stack, s.share_from, s.release_parameter) == ("acme/dockyard/registry", "acme/dockyard/dev",
                                                                     "/acme/x/release")
    assert s.database == SecretDatabaseSettings(secret_name="db-conn")
    assert s.kubernetes.render_dir == "out/x" and not s.kubernetes.create_namespace
    assert s.kubernetes.tls_secret == "x-tls" and s.kubernetes.ingress_class == "nginx"
    assert s.log_retention_days == 7 and s.certificate_arn.endswith("abc-123")


def test_database_variants():
    assert app(database="false").database is None
    assert app(target="kubernetes").database is None
    assert app(shareFrom="organization/dockyard/dev").database == SharedDatabase()
    assert app(shareFrom="organization/dockyard/dev", database=False).database is None
    db = app(database={"instanceClass": "db.r6g.large", "allocatedStorage": 100, "engineVersion": "16.4",
                       "name": "orders", "multiAz": True, "backupRetentionDays": 14}).database
    assert db == DatabaseSettings("db.r6g.large", 100, "16.4", "orders", True, 14)


def test_existing_network():
    s = app(network={"vpcId": "vpc-0123abcd", "publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"],
                     "privateSubnetIds": ["subnet-0000000c", "subnet-0000000d"]})
    assert s.network.existing and s.network.private_subnet_ids == ("subnet-0000000c", "subnet-0000000d")


def test_kubeconfig_and_render_dir_exclude_each_other():
    with pytest.raises(ConfigError, match="either kubeconfig .* or renderDir"):
        app(target="kubernetes", secret_keys=("dockyard:kubernetes",),
            kubernetes={"kubeconfig": "apiVersion: v1", "renderDir": "out"})


def test_kubeconfig_must_be_secret():
    kube = {"kubeconfig": "apiVersion: v1\nkind: Config"}
    refused("dockyard:kubernetes.kubeconfig is stored in plain text", app, target="kubernetes", kubernetes=kube)
    s = app(target="kubernetes", kubernetes=kube, secret_keys=("dockyard:kubernetes",))
    assert s.kubernetes.kubeconfig.startswith("apiVersion")


@pytest.mark.parametrize("values, message", [
    ({"services": None}, "dockyard:services is not set"),
    ({"services": {"web": {"cpu": 300}}}, "dockyard:services.web.cpu: got 300; expected one of 256, 512, 1024"),
    ({"services": {"web": {"cpu": 256, "memory": 4096}}},
     "dockyard:services.web.memory: got 4096 with cpu 256; Fargate accepts 512, 1024, 2048 MiB"),
    ({"services": {"web": {"cpu": 1024, "memory": 1024}}}, "Fargate accepts 2048 to 8192 in steps of 1024"),
    ({"services": {"web": {"memory": "lots"}}}, "dockyard:services.web.memory: got 'lots'"),
    ({"services": {"web": {"desiredCount": 5, "maxCount": 3}}}, "minCount 5 <= desiredCount 5 <= maxCount 3"),
    ({"services": {"web": {"port": 70000}}}, "dockyard:services.web.port: got 70000"),
    ({"services": {"web": {"path": "/api"}}}, "'path' and 'host' route traffic to a port"),
    ({"services": {"web": {"port": 80, "path": "api"}}}, "dockyard:services.web.path: got 'api'"),
    ({"services": {"web": {"port": 80, "host": "Bad Host"}}}, "dockyard:services.web.host: got 'Bad Host'"),
    ({"services": {"web": {"port": 80}, "api": {"port": 81}}}, "api, web all take the default route"),
    ({"services": {"web": {"port": 80, "path": "/a"}, "api": {"port": 81, "path": "/a"}}}, "same host/path"),
    ({"services": {"web": {"environment": {"A": {"nested": 1}}}}}, "dockyard:services.web.environment.A"),
    ({"services": {"web": {"environment": {"1A": "x"}}}}, "dockyard:services.web.environment.1A"),
    ({"services": {"web": {"secrets": {"TOKEN": "plain-text-secret"}}}}, "dockyard:services.web.secrets.TOKEN"),
    ({"services": {"web": {"prot": 80}}}, "dockyard:services.web.prot is not a setting here"),
    ({"target": "lambda"}, "dockyard:target: got 'lambda'; expected one of ecs, kubernetes"),
    ({"imageSource": "s3"}, "dockyard:imageSource: got 's3'; expected one of stack, ssm, file"),
    ({"registryStack": "registry"}, "dockyard:registryStack: got 'registry'; expected a fully qualified stack"),
    ({"shareFrom": "dev"}, "dockyard:shareFrom: got 'dev'"),
    ({"ephemeral": "maybe"}, "dockyard:ephemeral: got 'maybe'; expected true or false"),
    ({"database": {"instanceClass": "t3.micro"}}, "dockyard:database.instanceClass: got 't3.micro'"),
    ({"database": {"backupRetentionDays": 1}}, "dockyard:database.backupRetentionDays: got 1"),
    ({"database": {"engineVersion": "9.6"}}, "dockyard:database.engineVersion: got '9.6'"),
    ({"database": {"size": 1}}, "dockyard:database.size is not a setting here"),
    ({"database": {"instanceClass": "db.t4g.micro"}, "shareFrom": "a/b/c"}, "uses its base's database"),
    ({"target": "kubernetes", "database": {"instanceClass": "db.t4g.micro"}}, "dockyard:database.instanceClass"),
    ({"kubernetes": {"namespace": "Apps"}}, "dockyard:kubernetes.namespace: got 'Apps'"),
    ({"kubernetes": {"renderdir": "x"}}, "dockyard:kubernetes.renderdir is not a setting here"),
    ({"network": {"publicSubnetIds": ["subnet-0000000a"]}}, "needs dockyard:network.vpcId"),
    ({"network": {"vpcId": "vpc-0123abcd", "publicSubnetIds": ["subnet-0000000a"],
                  "privateSubnetIds": ["subnet-0000000c", "subnet-0000000d"]}}, "two or more subnet ids"),
    ({"network": {"vpcId": "vpc-0123abcd", "cidr": "10.1.0.0/16"}}, "cannot be combined with vpcId"),
    ({"network": {"availabilityZones": 1}}, "dockyard:network.availabilityZones: got 1"),
    ({"network": {"cidr": "10.0.0.0/8"}}, "dockyard:network.cidr: got '10.0.0.0/8'"),
    ({"logRetentionDays": 31}, "dockyard:logRetentionDays: got 31; expected one of 1, 3, 5"),
    ({"certificateArn": "arn:aws:iam::123:x"}, "dockyard:certificateArn: got 'arn:aws:iam::123:x'"),
    ({"prebuilt": {}}, "dockyard:prebuilt applies to role registry, not to role app"),
    ({"target": "kubernetes", "services": {"web": {"secrets": {"T": "/acme/token"}}}},
     "dockyard:services.web.secrets.T: got '/acme/token'; expected a key of a Kubernetes Secret"),
    ({"kubernetes": {"renderDir": "out", "kubeconfig": "x"}}, "plain text"),
    ({"kubernetes": {"ingressNamespace": "Ingress"}}, "dockyard:kubernetes.ingressNamespace: got 'Ingress'"),
    ({"services": {"worker": {"healthCheckCommand": "python check.py"}}},
     "dockyard:services.worker.healthCheckCommand: got 'python check.py'; expected a command as a list"),
])
def test_app_bad_values(values, message):
    refused(message, app, **values)


# ----------------------------------------------------------------------------- kubernetes.ingressFrom


def test_ingress_from_defaults_to_the_ingress_namespace():
    kube = app(target="kubernetes", kubernetes={"ingressNamespace": "traefik"}).kubernetes
    assert kube.ingress_from == ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}},)
    peers = [{"ipBlock": {"cidr": "192.168.0.0/16"}}, {"namespaceSelector": {}},
             {"ipBlock": {"cidr": "fd00::/8", "except": ["fd00:1::/32"]}}]
    assert app(target="kubernetes", kubernetes={"ingressFrom": peers}).kubernetes.ingress_from == tuple(peers)


@pytest.mark.parametrize("peers, message", [
    ("10.0.0.0/8", "dockyard:kubernetes.ingressFrom: got '10.0.0.0/8'; expected a list of peers"),
    ([], "dockyard:kubernetes.ingressFrom: got []; expected a list of peers"),
    (["10.0.0.0/8"], "dockyard:kubernetes.ingressFrom[0]: got '10.0.0.0/8'; expected an object"),
    ([{}], "dockyard:kubernetes.ingressFrom[0]: got {}; expected one of ipBlock, namespaceSelector, podSelector"),
    ([{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipblock": {}}], "dockyard:kubernetes.ingressFrom[1].ipblock is not a setting"),
    ([{"ipBlock": {"cidr": "10.0.0.300/8"}}], "dockyard:kubernetes.ingressFrom[0].ipBlock.cidr: got '10.0.0.300/8'"),
    ([{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}],
     "dockyard:kubernetes.ingressFrom[0].ipBlock.except[0]: got '11.0.0.0/16'; expected a CIDR inside 10.0.0.0/8"),
    ([{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}],
     "dockyard:kubernetes.ingressFrom[0]: ipBlock cannot be combined with namespaceSelector or podSelector"),
    ([{"namespaceSelector": {"matchLabels": {"team": "a b"}}}],
     "dockyard:kubernetes.ingressFrom[0].namespaceSelector.matchLabels.team: got 'a b'; expected a label value"),
    ([{"podSelector": {"matchLabels": {"-bad": "x"}}}],
     "dockyard:kubernetes.ingressFrom[0].podSelector.matchLabels.-bad: got '-bad'; expected a label key"),
    ([{"podSelector": {"matchExpressions": []}}],
     "dockyard:kubernetes.ingressFrom[0].podSelector.matchExpressions is not a setting here"),
])
def test_ingress_from_bad_peers_name_their_key_path(peers, message):
    refused(message, app, target="kubernetes", kubernetes={"ingressFrom": peers})


def test_ingress_from_and_ingress_namespace_exclude_each_other():
    refused("dockyard:kubernetes: set either ingressNamespace or ingressFrom", app, target="kubernetes",
            kubernetes={"ingressNamespace": "x", "ingressFrom": [{"namespaceSelector": {}}]})


# ----------------------------------------------------------------------------- Kubernetes branch stacks


def test_kubernetes_branch_database_secret_settings():
    db = app(target="kubernetes", database={"secretName": "orders-db", "branchSecretName": "orders-preview"}).database
    assert (db.secret_name, db.branch_secret_name) == ("orders-db", "orders-preview")
    assert app(target="kubernetes", database={"secretName": "orders-db"}).database.branch_secret_name is None
    refused("dockyard:database.branchSecretName: got 'Orders'", app, target="kubernetes",
            database={"secretName": "orders-db", "branchSecretName": "Orders"})


def test_kubernetes_branch_stack_needs_a_host_for_its_routed_services():
    branch = dict(stack="branch-feature-x", target="kubernetes", ephemeral=True)
    refused("dockyard:kubernetes.host: a branch stack's Ingress needs a host", app, **branch,
            kubernetes={"renderDir": "r"})
    assert app(**branch, kubernetes={"host": "dev.example.com"}).kubernetes.host == "dev.example.com"
    # Every routed service has its own host: no shared default needed. Workers need none.
    assert app(**branch, services={"web": {"port": 8080, "host": "web.example.com"}, "worker": {}}).services
    assert app("dev", target="kubernetes").kubernetes.host is None  # an environment may take every host


# ----------------------------------------------------------------------------- ECS listener rule priorities


def colliding_service_names() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for i in range(5000):
        name = f"svc-{i}"
        priority = naming.listener_priority(name)
        if priority in seen:
            return seen[priority], name
        seen[priority] = name
    raise AssertionError("no two names share a priority")


def test_two_services_on_one_priority_are_refused_with_the_fix():
    first, second = sorted(colliding_service_names())
    refused(f"dockyard:services.{second}.priority: listener rule priority "
            f"{naming.listener_priority(first)} is also services.{first}'s; set", app,
            services={first: {"port": 80, "path": "/a/*"}, second: {"port": 81, "path": "/b/*"}})
    # an explicit priority on either resolves it
    s = app(services={first: {"port": 80, "path": "/a/*"}, second: {"port": 81, "path": "/b/*", "priority": 7}})
    assert config.rule_priority(s.services[second]) == 7


@pytest.mark.parametrize("services, message", [
    ({"web": {"port": 80, "path": "/a/*", "priority": 50000}}, "dockyard:services.web.priority: got 50000"),
    ({"web": {"port": 80, "path": "/a/*", "priority": 5}, "api": {"port": 81, "path": "/b/*", "priority": 5}},
     "dockyard:services.web.priority: listener rule priority 5 is also services.api's"),
    ({"web": {"port": 80, "priority": 5}}, "dockyard:services.web.priority: web takes the default route"),
    ({"web": {"priority": 5}}, "dockyard:services.web.priority: web has no port"),
])
def test_bad_rule_priorities(services, message):
    refused(message, app, services=services)


# ----------------------------------------------------------------------------- one services map for every stack

SHARED = {"web": {"port": 8080, "cpu": 512, "memory": 1024, "platform": "linux/arm64", "healthCheckPath": "/ready",
                  "environment": {"LOG_LEVEL": "debug", "REGION": "eu"}, "buildArgs": {"PY": "3.12"}},
          "worker": {"healthCheckCommand": ["python", "worker.py", "--check"], "dockerfile": "images/worker/Containerfile"}}


def test_one_shared_services_map_serves_the_registry_and_the_app_stacks():
    built = registry(services=SHARED)
    assert built.services == ("web", "worker")
    assert built.builds["web"].platform == "linux/arm64" and built.builds["web"].build_args == {"PY": "3.12"}
    assert built.builds["worker"].dockerfile == "images/worker/Containerfile"
    run = app(services=SHARED)
    assert (run.services["web"].port, run.services["web"].cpu, run.services["web"].platform) == (8080, 512, "linux/arm64")
    assert run.services["worker"].health_check_command == ("python", "worker.py", "--check")


def test_service_overrides_change_only_their_own_keys():
    import dataclasses

    plain = app(services=SHARED)
    prod = app(services=SHARED, serviceOverrides={"web": {"cpu": 1024, "memory": 2048, "desiredCount": 3,
                                                          "environment": {"LOG_LEVEL": "info"}}})
    web = prod.services["web"]
    assert (web.cpu, web.memory, web.desired_count) == (1024, 2048, 3)
    assert web.environment == {"LOG_LEVEL": "info", "REGION": "eu"}  # maps merge per key
    assert web == dataclasses.replace(plain.services["web"], cpu=1024, memory=2048, desired_count=3, min_count=3,
                                      max_count=6, environment={"LOG_LEVEL": "info", "REGION": "eu"})
    assert prod.services["worker"] == plain.services["worker"]
    # null removes a shared key; the registry reads overrides of its own keys too
    assert app(services=SHARED, serviceOverrides={"web": {"healthCheckPath": None}}).services["web"].health_check_path \
        == "/healthz"
    assert registry(services=SHARED, serviceOverrides={"web": {"platform": "linux/amd64", "cpu": 4096}}) \
        .builds["web"].platform == "linux/amd64"


@pytest.mark.parametrize("loader, values, message", [
    (registry, {"services": {"web": {"prot": 8080}}}, "dockyard:services.web.prot is not a setting here"),
    (app, {"services": {"web": {"contxt": "x"}}}, "dockyard:services.web.contxt is not a setting here"),
    (app, {"services": SHARED, "serviceOverrides": {"web": {"cpuu": 1}}},
     "dockyard:serviceOverrides.web.cpuu is not a setting here"),
    (registry, {"services": SHARED, "serviceOverrides": {"api": {"cpu": 512}}},
     "dockyard:serviceOverrides.api: 'api' is not a service; services: web, worker"),
    (app, {"services": SHARED, "serviceOverrides": {"web": {"cpu": 300}}},
     "dockyard:serviceOverrides.web.cpu: got 300; expected one of 256"),
    (app, {"services": SHARED, "serviceOverrides": {"web": 3}}, "dockyard:serviceOverrides.web: got 3; expected an object"),
    (app, {"services": SHARED, "serviceOverrides": "web"}, "dockyard:serviceOverrides: got 'web'; expected an object"),
])
def test_bad_shared_services_and_overrides_name_their_key_path(loader, values, message):
    refused(message, loader, **values)


def test_stack_files_are_read_with_the_project_level_config(tmp_path):
    import yaml

    from dockyard.release.project import read_stack_config

    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "dockyard", "runtime": "python", "config": {
        "dockyard:services": {"value": SHARED}, "imageSource": "file", "dockyard:target": {"value": "kubernetes"}}}))
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "app", "dockyard:target": "ecs", "dockyard:serviceOverrides": {"web": {"cpu": 1024, "memory": 2048}}}}))
    (tmp_path / "Pulumi.own.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "app", "dockyard:services": {"api": {"port": 80}}}}))
    values, _ = read_stack_config(tmp_path / "Pulumi.prod.yaml")
    prod = config.load(values, stack="prod")
    # The engine's merge: a project value for every key the stack does not set; the stack's wins whole.
    assert (prod.target, prod.image_source, prod.services["web"].cpu, prod.services["web"].port) == (
        "ecs", "file", 1024, 8080)
    own = config.load(read_stack_config(tmp_path / "Pulumi.own.yaml")[0], stack="own")
    assert set(own.services) == {"api"} and own.target == "kubernetes"


def test_shipped_stacks_share_the_projects_services_map():
    from pathlib import Path

    import yaml

    from dockyard.release.project import read_stack_config

    root = Path(__file__).resolve().parents[2]
    assert "dockyard:services" in yaml.safe_load((root / "Pulumi.yaml").read_text())["config"]
    loaded = {}
    for stack in ("registry", "dev", "prod"):
        assert "dockyard:services" not in yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())["config"]
        loaded[stack] = config.load(read_stack_config(root / f"Pulumi.{stack}.yaml")[0], stack=stack,
                                    discovered_services=["web", "worker"])
    assert set(loaded["registry"].services) == set(loaded["dev"].services) == set(loaded["prod"].services)
    dev, prod = loaded["dev"].services["web"], loaded["prod"].services["web"]
    assert (prod.port, prod.health_check_path, prod.platform) == (dev.port, dev.health_check_path, dev.platform)
    assert (prod.cpu, prod.max_count) != (dev.cpu, dev.max_count)


# ----------------------------------------------------------------------------- ECS database and network


def test_database_master_is_an_explicit_opt_in_refused_for_branch_stacks():
    s = app(services={"web": {"port": 8080, "databaseMaster": True}, "worker": {}})
    assert s.services["web"].database_master and not s.services["worker"].database_master
    for branch in ({"ephemeral": True}, {"shareFrom": "acme/dockyard/dev"}):
        refused("dockyard:services.web.databaseMaster: got true; branch stacks (ephemeral or shareFrom) never "
                "receive the database master secret", app, services={"web": {"databaseMaster": True}}, **branch)


@pytest.mark.parametrize("network, message", [
    ({"natGateways": 0}, "dockyard:network.natGateways: got 0; expected a whole number from 1 to 6"),
    ({"cidr": "10.0.0.0/27"}, "dockyard:network.cidr: got '10.0.0.0/27'; 2 zones need 4 subnets of at least /28: "
                              "expected a prefix from /16 to /26"),
    ({"cidr": "10.0.0.0/26", "availabilityZones": 3}, "6 subnets of at least /28: expected a prefix from /16 to /25"),
    ({"cidr": "10.0.0.1/16"}, "dockyard:network.cidr: got '10.0.0.1/16'; expected a network address"),
    ({"cidr": "10.300.0.0/16"}, "dockyard:network.cidr: got '10.300.0.0/16'"),
])
def test_networks_ec2_would_refuse_are_refused(network, message):
    refused(message, app, network=network)


def test_smallest_networks_that_fit():
    assert app(network={"cidr": "10.0.0.0/26"}).network.cidr == "10.0.0.0/26"
    assert app(network={"cidr": "10.0.0.0/25", "availabilityZones": 3}).network.availability_zones == 3


def test_listener_port_belongs_to_branch_stacks_in_the_preview_range():
    assert app(shareFrom="acme/dockyard/dev", listenerPort=10007).listener_port == 10007
    assert app().listener_port is None
    refused("dockyard:listenerPort: got '80'; expected a whole number from 10000 to 10489", app,
            shareFrom="acme/dockyard/dev", listenerPort=80)
    refused("dockyard:listenerPort applies to a stack with dockyard:shareFrom", app, listenerPort=10007)
