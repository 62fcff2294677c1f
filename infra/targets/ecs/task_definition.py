"""The Fargate container definition of a service, as the JSON ECS takes (pure, so it can be validated)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from dockyard import naming
from dockyard.config import ServiceSettings

SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"
# The images run as this user (see images/*/Dockerfile); ECS enforces it too.
RUN_AS = "10001:10001"
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class DatabaseConnection:
    address: str
    port: int
    name: str
    resource_id: str  # the instance's DbiResourceId: what IAM database authentication grants name
    master_username: str
    master_secret_arn: str | None  # None where no service may have it (branch stacks)


def database_user(service: ServiceSettings, database: DatabaseConnection) -> str:
    return database.master_username if uses_master(service, database) else naming.database_user(service.name)


def uses_master(service: ServiceSettings, database: DatabaseConnection | None) -> bool:
    return bool(database and service.database_master and database.master_secret_arn)


def health_check_command(service: ServiceSettings) -> list[str] | None:
    if service.health_check_command:
        return ["CMD", *service.health_check_command]
    if service.port is None:
        return None
    # The images carry Python but no curl: probe the health path with the standard library.
    url = f"http://127.0.0.1:{service.port}{service.health_check_path}"
    probe = ("import sys, urllib.request; "
             f"sys.exit(0 if urllib.request.urlopen('{url}', timeout=3).status < 400 else 1)")
    return ["CMD", "python", "-c", probe]


def container_definitions(service: ServiceSettings, *, image: str, log_group: str, region: str,
                          secrets: Mapping[str, str], database: DatabaseConnection | None) -> list[dict]:
    """One essential container: pinned image, read-only root, non-root, no privilege, logs to CloudWatch.

    `secrets` maps environment names to SSM parameter or Secrets Manager ARNs.
    """
    environment = dict(service.environment)
    all_secrets = dict(secrets)
    if database is not None:
        master = uses_master(service, database)
        environment.update(DATABASE_HOST=database.address, DATABASE_PORT=str(database.port),
                           DATABASE_NAME=database.name, DATABASE_USER=database_user(service, database),
                           DATABASE_AUTH="password" if master else "iam")
        if master:
            # Opted in (databaseMaster). The managed secret is JSON {"username", "password"}: ECS extracts
            # the one key, at task start only, so a rotation needs a new deployment.
            all_secrets["DATABASE_PASSWORD"] = f"{database.master_secret_arn}:password::"
    if service.port is not None:
        environment.setdefault("PORT", str(service.port))
    container: dict = {
        "name": service.name,
        "image": image,
        "essential": True,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "user": RUN_AS,
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}],
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(all_secrets.items())],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": service.name}},
    }
    if service.port is not None:
        container["portMappings"] = [{"containerPort": service.port, "protocol": "tcp", "name": service.name}]
    command = health_check_command(service)
    if command:
        container["healthCheck"] = {"command": command, "interval": 15, "timeout": 5, "retries": 3,
                                    "startPeriod": 30}
    return [container]


def container_definitions_json(*args, **kwargs) -> str:
    return json.dumps(container_definitions(*args, **kwargs), sort_keys=True)
