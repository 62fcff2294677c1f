"""The names of the `dockyard:` keys for each role, and the values AWS allows for some of them (pure)."""

from __future__ import annotations

NAMESPACE = "dockyard"

# Fargate task sizes AWS accepts: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)
PLATFORMS = ("linux/amd64", "linux/arm64")

# `services` is meant for the project level (Pulumi.yaml), one map for every stack; a stack changes
# single settings with `serviceOverrides` (the engine would replace the whole map otherwise).
COMMON_KEYS = ("role", "services", "serviceOverrides", "releaseParameter")
REGISTRY_KEYS = ("prebuilt", "registry", "oci", "publish", "keepImages", "untaggedExpiryDays")
APP_KEYS = ("target", "imageSource", "releaseDir", "registryStack", "ephemeral", "shareFrom",
            "database", "kubernetes", "network", "logRetentionDays", "certificateArn", "listenerPort",
            "deployment", "trust", "nomad", "windows", "notify", "soak")
SERVICE_KEYS = ("port", "cpu", "memory", "desiredCount", "minCount", "maxCount",
                "healthCheckPath", "healthCheckCommand", "path", "host", "environment", "secrets", "platform",
                "priority", "databaseMaster", "deployment",
                # how the container runs (infra/config/runtime.py)
                "runAsUser", "runAsGroup", "writablePaths", "command", "args", "healthCheckType",
                "startupGracePeriod", "kubernetesResources")
BUILD_KEYS = ("context", "dockerfile", "platform", "buildArgs", "builder", "packerTemplate")
BUILDERS = ("docker", "packer")
REGISTRY_KINDS = ("ecr", "oci", "external")


def all_service_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(SERVICE_KEYS + BUILD_KEYS))
