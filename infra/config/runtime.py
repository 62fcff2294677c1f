"""How a container runs, per service: its user, its writable paths, its command, its health check's kind,
its startup grace and its Kubernetes resources (pure). The keys live in `dockyard:services.<name>`.

By default a container runs as the user its image was built with (its config's `User`, read by digest
when a release is written and recorded in it): a number other than 0. An image that would run as root,
or whose user is a name (which Kubernetes' runAsNonRoot cannot check), is refused with the key to set.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dockyard.errors import ConfigError
from dockyard.validation import choice, command, decode, fail, integer, known_keys, mapping

RUNTIME_KEYS = ("runAsUser", "runAsGroup", "writablePaths", "command", "args", "healthCheckType",
                "startupGracePeriod", "kubernetesResources")
HEALTH_CHECK_TYPES = ("http", "tcp")
DEFAULT_GRACE_SECONDS = 60  # 30 probes 2 s apart: what every target allowed before the key existed
MAX_GRACE_SECONDS = 3600
MAX_ID = 2**31 - 1
_QUANTITY = re.compile(r"^([1-9][0-9]{0,6})(Ki|Mi|Gi)$")
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
MIN_PATH_BYTES, MAX_PATH_BYTES = 2**20, 64 * 2**30
_CPU = re.compile(r"^([1-9][0-9]{0,5}m|[1-9][0-9]{0,2}(\.[0-9]{1,3})?|0\.[0-9]{1,3})$")
_MEMORY = re.compile(r"^[1-9][0-9]{0,6}(Ki|Mi|Gi|K|M|G)?$")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_RESOURCE_KEYS = ("requests", "limits")


@dataclass(frozen=True)
class WritablePath:
    """A writable directory beside the read-only root: an emptyDir, a tmpfs or an ECS volume."""

    path: str
    size: str  # as written, e.g. "64Mi"

    @property
    def bytes(self) -> int:
        number, unit = _QUANTITY.match(self.size).groups()  # type: ignore[union-attr]
        return int(number) * _UNITS[unit]

    @property
    def volume(self) -> str:
        """A volume name for the path (DNS label): /var/lib/redis -> var-lib-redis."""
        name = re.sub(r"[^a-z0-9-]+", "-", self.path.lower()).strip("-") or "root"
        return f"w-{name}"[:63].rstrip("-")


@dataclass(frozen=True)
class KubernetesResources:
    """Kubernetes requests and limits as the cluster spells them, where Fargate sizes do not fit."""

    requests: Mapping[str, str]
    limits: Mapping[str, str]


DEFAULT_WRITABLE = (WritablePath("/tmp", "64Mi"),)


@dataclass(frozen=True)
class RuntimeSettings:
    run_as_user: int | None = None  # None: the image's own numeric user
    run_as_group: int | None = None  # None: the image's (or the user's primary) group
    writable_paths: tuple[WritablePath, ...] = DEFAULT_WRITABLE
    command: tuple[str, ...] | None = None  # replaces the image's ENTRYPOINT
    args: tuple[str, ...] | None = None  # replaces the image's CMD
    health_check_type: Literal["http", "tcp"] = "http"
    startup_grace_seconds: int = DEFAULT_GRACE_SECONDS
    kubernetes_resources: KubernetesResources | None = None


@dataclass(frozen=True)
class RunAs:
    """The numeric user (and group, when known) a container runs as."""

    user: int
    group: int | None = None

    def docker(self) -> str:
        """As Docker, ECS and Nomad take it: `uid` or `uid:gid`."""
        return str(self.user) if self.group is None else f"{self.user}:{self.group}"


def parse(p: str, entry: Mapping[str, Any], port: int | None, health_check_command: Any) -> RuntimeSettings:
    """The runtime keys of `services.<name>` (path `p`)."""
    user = entry.get("runAsUser")
    if user is not None and str(user).strip() in ("0", "root"):
        raise ConfigError(f"dockyard:{p}.runAsUser: got {user}; dockyard runs no container as root",
                          hint="set the image's own non-root uid (e.g. 101), or remove the key to use the image's USER")
    kind = choice(f"{p}.healthCheckType", entry.get("healthCheckType", "http"), HEALTH_CHECK_TYPES)
    if kind == "tcp" and port is None:
        raise ConfigError(f"dockyard:{p}.healthCheckType: tcp connects to the service's port; set {p}.port too")
    if kind == "tcp" and health_check_command is not None:
        raise ConfigError(f"dockyard:{p}: set either healthCheckType tcp or healthCheckCommand, not both")
    return RuntimeSettings(
        run_as_user=None if user is None else integer(f"{p}.runAsUser", user, 1, MAX_ID),
        run_as_group=(None if entry.get("runAsGroup") is None
                      else integer(f"{p}.runAsGroup", entry["runAsGroup"], 0, MAX_ID)),
        writable_paths=_writable(f"{p}.writablePaths", entry.get("writablePaths")),
        command=command(f"{p}.command", entry.get("command")),
        args=_args(f"{p}.args", entry.get("args")),
        health_check_type=kind,
        startup_grace_seconds=integer(f"{p}.startupGracePeriod", entry.get("startupGracePeriod", DEFAULT_GRACE_SECONDS),
                                      0, MAX_GRACE_SECONDS),
        kubernetes_resources=_resources(f"{p}.kubernetesResources", entry.get("kubernetesResources")),
    )


def _args(path: str, value: Any) -> tuple[str, ...] | None:
    value = decode(path, value)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(path, value, 'a list of strings, like ["--port", "6379"]')
    return tuple(value)


def _writable(path: str, value: Any) -> tuple[WritablePath, ...]:
    entry = mapping(path, value, default=None)
    if entry is None:
        return DEFAULT_WRITABLE
    found: list[WritablePath] = []
    for directory, size in entry.items():
        clean = posixpath.normpath(directory) if isinstance(directory, str) else directory
        if not isinstance(directory, str) or not _PATH.match(directory) or clean != directory or directory == "/":
            raise fail(f"{path}.{directory}", directory, "an absolute, normalized directory other than /, like /var/cache/nginx")
        match = _QUANTITY.match(str(size)) if isinstance(size, str) else None
        item = WritablePath(directory, str(size))
        if match is None or not MIN_PATH_BYTES <= item.bytes <= MAX_PATH_BYTES:
            raise fail(f"{path}.{directory}", size, "a size from 1Mi to 64Gi, like 64Mi or 1Gi")
        for other in found:
            if directory.startswith(other.path + "/") or other.path.startswith(directory + "/"):
                raise ConfigError(f"dockyard:{path}: {directory} and {other.path} overlap; list the outer one only")
            if item.volume == other.volume:
                raise ConfigError(f"dockyard:{path}: {directory} and {other.path} differ only in punctuation; "
                                  "rename one")
        found.append(item)
    return tuple(sorted(found, key=lambda w: w.path))


def _resources(path: str, value: Any) -> KubernetesResources | None:
    entry = mapping(path, value, default=None)
    if entry is None:
        return None
    known_keys(path, entry, _RESOURCE_KEYS)
    parts: dict[str, dict[str, str]] = {}
    for part in _RESOURCE_KEYS:
        values = mapping(f"{path}.{part}", entry.get(part), default={}) or {}
        known_keys(f"{path}.{part}", values, ("cpu", "memory"))
        checked = {}
        for key, pattern, example in (("cpu", _CPU, "250m or 1.5"), ("memory", _MEMORY, "256Mi or 1Gi")):
            if key in values:
                item = str(values[key]) if isinstance(values[key], (str, int)) else values[key]
                if not isinstance(item, str) or not pattern.match(item):
                    raise fail(f"{path}.{part}.{key}", values[key], f"a Kubernetes quantity like {example}")
                checked[key] = item
        parts[part] = checked
    # The restricted profile does not ask for them, but the policy pack does: a pod without a memory
    # limit can take the node's memory, one without requests is scheduled blind.
    for part, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
        if key not in parts[part]:
            raise ConfigError(f"dockyard:{path}.{part}.{key} is missing; kubernetesResources needs requests.cpu, "
                              "requests.memory and limits.memory (limits.cpu is optional)")
    return KubernetesResources(requests=parts["requests"], limits=parts["limits"])


# ----------------------------------------------------------------------------- the user a container runs as


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def run_as(service: str, runtime: RuntimeSettings, image_user: str | None, *, image: str = "the image") -> RunAs | None:
    """The user `service` runs as: its keys, else the image's own `User` (from its config; None when
    not known, and the orchestrator is left to enforce non-root on its own).

    Raises ConfigError naming the key to set when the image would run as root or names its user.
    """
    if runtime.run_as_user is not None:
        return RunAs(runtime.run_as_user, runtime.run_as_group)
    if image_user is None:
        return None
    user, _, group = image_user.strip().partition(":")
    key = f"dockyard:services.{service}.runAsUser"
    hint = (f"set the uid it should run as: pulumi config set --path '{key}' <uid> "
            f"(dockyard:services.{service}.runAsGroup for the group), or give its Dockerfile a numeric USER")
    uid = _number(user)
    if user in ("", "root") or uid == 0:
        shown = f"USER {image_user}" if image_user.strip() else "no USER"
        raise ConfigError(f"{key}: {image} would run as root ({shown}); dockyard runs no container as root",
                          hint=hint)
    if uid is None:
        raise ConfigError(f"{key}: {image} runs as the user name {user!r}; a name cannot be proven non-root "
                          "(Kubernetes' runAsNonRoot needs a number), so dockyard needs its uid", hint=hint)
    gid = runtime.run_as_group if runtime.run_as_group is not None else _number(group)
    return RunAs(uid, gid)
