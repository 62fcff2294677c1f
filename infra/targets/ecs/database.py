"""The shared PostgreSQL database on RDS: private, encrypted, with an AWS-managed password."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dockyard import naming
from dockyard.config import DatabaseSettings

MASTER_USERNAME = "dockyard"
POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")


@dataclass(frozen=True)
class DatabaseArgs:
    stack: str
    settings: DatabaseSettings
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    ephemeral: bool
    log_retention_days: int = 30


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    name: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dockyard:app:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        identifier = naming.db_identifier(args.stack)
        # A retained instance keeps what it stands on: deleting its group or subnet group would fail
        # while it lives, and leave `destroy` unable to finish.
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=not args.ephemeral)
        # No ingress here: each service adds a rule for its own security group.
        group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id,
                                      description="dockyard database: PostgreSQL from the services only",
                                      opts=kept)
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=args.private_subnet_ids,
                                      description="dockyard database: private subnets", opts=kept)
        # RDS creates its export log groups without retention unless they exist before the instance.
        log_groups = [aws.cloudwatch.LogGroup(
            f"{name}-logs-{export}", name=f"/aws/rds/instance/{identifier}/{export}",
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=not args.ephemeral, retain_on_delete=not args.ephemeral))
            for export in LOG_EXPORTS]
        instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=identifier,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            allocated_storage=settings.allocated_storage,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=settings.name,
            username=MASTER_USERNAME,
            # RDS generates the password and keeps it in Secrets Manager: it never passes through Pulumi state.
            manage_master_user_password=True,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            multi_az=settings.multi_az,
            backup_retention_period=settings.backup_retention_days,
            iam_database_authentication_enabled=True,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            deletion_protection=not args.ephemeral,
            skip_final_snapshot=args.ephemeral,
            final_snapshot_identifier=None if args.ephemeral else f"{identifier}-final",
            apply_immediately=args.ephemeral,
            opts=pulumi.ResourceOptions(parent=self, protect=not args.ephemeral, retain_on_delete=not args.ephemeral,
                                        depends_on=log_groups),
        )
        self.address = instance.address
        self.port = instance.port
        self.name = instance.db_name
        self.secret_arn = instance.master_user_secrets.apply(_first_secret_arn)
        self.resource_id = instance.resource_id
        self.security_group_id = group.id
        self.register_outputs({"address": self.address, "port": self.port, "name": self.name,
                               "secretArn": self.secret_arn, "resourceId": self.resource_id,
                               "securityGroupId": self.security_group_id})


def _first_secret_arn(secrets: list) -> str:
    secret = secrets[0]
    return getattr(secret, "secret_arn", None) or secret["secretArn"]
