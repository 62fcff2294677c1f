"""The project as the command sees it: its directory, its stacks' config files, their release stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockyard import config, naming
from dockyard.config import AppSettings, RegistrySettings
from dockyard.errors import BadInput, ConfigError
from dockyard.release.stores.file import FileStore
from dockyard.release.stores.base import ReleaseStore

PROJECT_FILE = "Pulumi.yaml"
REGISTRY = "registry"
SECRET_PLACEHOLDER = config.ENCRYPTED


@dataclass(frozen=True)
class Environment:
    """One stack of the project, with the settings its config file holds."""

    name: str
    settings: AppSettings | RegistrySettings
    config_file: Path

    @property
    def is_registry(self) -> bool:
        return isinstance(self.settings, RegistrySettings)

    @property
    def follows_stack(self) -> bool:
        """An app stack that deploys the registry stack's `images` output: it has no release store."""
        return isinstance(self.settings, AppSettings) and self.settings.image_source == "stack"

    @property
    def store_kind(self) -> str:
        if isinstance(self.settings, RegistrySettings):
            return "ssm" if self.settings.publish else "stack"
        return self.settings.image_source


class Project:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._ssm: Any = None

    @classmethod
    def find(cls, start: Path, **kwargs: Any) -> Project:
        for candidate in [start, *start.parents]:
            if (candidate / PROJECT_FILE).is_file():
                return cls(candidate, **kwargs)
        raise BadInput(f"no {PROJECT_FILE} in {start} or any parent directory",
                       hint="run dockyard inside the project, or pass --project-dir")

    @property
    def name(self) -> str:
        data = yaml.safe_load((self.dir / PROJECT_FILE).read_text()) or {}
        return str(data.get("name", "dockyard"))

    def config_file(self, stack: str) -> Path:
        return self.dir / f"Pulumi.{stack}.yaml"

    def stack_names(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.dir.glob("Pulumi.*.yaml"))

    def environment(self, name: str) -> Environment:
        path = self.config_file(name)
        if not path.is_file():
            known = ", ".join(self.stack_names()) or "none"
            raise BadInput(f"no environment {name!r}: {path.name} does not exist", hint=f"known stacks: {known}")
        raw, secret_keys = read_stack_config(path)
        discovered = sorted(p.parent.name for p in (self.dir / "images").glob("*/Dockerfile"))
        try:
            settings = config.load(raw, stack=name, secret_keys=secret_keys, discovered_services=discovered)
        except ConfigError as err:
            raise ConfigError(f"{path.name}: {err.message}", hint=err.hint) from None
        return Environment(name=name, settings=settings, config_file=path)

    def app_environment(self, name: str) -> Environment:
        env = self.environment(name)
        if env.is_registry:
            raise BadInput(f"{name} is the registry stack, not an environment",
                           hint="promote into an app stack; the registry is only ever a source (--from registry)")
        return env

    def store(self, env: Environment, ssm_client: Callable[[], Any]) -> ReleaseStore:
        """The release store an environment reads its images from."""
        if env.store_kind == "file":
            assert isinstance(env.settings, AppSettings)
            return FileStore(self.dir / env.settings.release_dir, where=f"release store {env.settings.release_dir}")
        if env.store_kind == "ssm":
            from dockyard.release.stores.ssm import SsmStore

            return SsmStore(ssm_client(), env.settings.release_parameter)
        raise BadInput(f"{env.name} follows the registry stack and has no release history",
                       hint=pin_hint(env.name))

    def write_stack_config(self, stack: str, values: dict[str, Any]) -> Path:
        path = self.config_file(stack)
        path.write_text(yaml.safe_dump({"config": values}, sort_keys=False))
        return path

    def branch_stacks(self) -> list[str]:
        return [s for s in self.stack_names() if naming.is_branch_stack(s)]


def pin_hint(env: str) -> str:
    return (f"pin it to a release store first: pulumi config set -s {env} dockyard:imageSource ssm "
            f"(or file), then dockyard promote {env} --from registry")


def project_config(project_file: Path) -> dict[str, Any]:
    """Pulumi.yaml's `config:` values, as the engine hands them to every stack of the project.

    A key holds a plain value or `{value: …}` (`default:` for declared keys); a key without a
    namespace is the project's own (`services` is `dockyard:services`).
    """
    if not project_file.is_file():
        return {}
    try:
        data = yaml.safe_load(project_file.read_text()) or {}
    except yaml.YAMLError as err:
        raise BadInput(f"{project_file.name} is not valid YAML: {err}") from None
    name = str(data.get("name", "dockyard"))
    values = {}
    for key, item in (data.get("config") or {}).items():
        if isinstance(item, dict):
            if "value" not in item and "default" not in item:
                continue  # a declaration without a value: each stack sets it
            item = item["value"] if "value" in item else item["default"]
        values[key if ":" in key else f"{name}:{key}"] = item
    return values


def read_stack_config(path: Path) -> tuple[dict[str, Any], set[str]]:
    """A stack file's config as the engine would pass it: strings, objects as JSON, secrets marked."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise BadInput(f"{path.name} is not valid YAML: {err}") from None
    values, secret_keys = {}, set()
    # The stack's keys win whole, as in the engine: a project-level value only fills a key the stack lacks.
    merged = {**project_config(path.parent / PROJECT_FILE), **(data.get("config") or {})}
    for key, value in merged.items():
        plain, secret = _strip_secrets(value)
        if secret:
            secret_keys.add(key)
        values[key] = plain if isinstance(plain, str) else json.dumps(plain)
    return values, secret_keys


def _strip_secrets(value: Any) -> tuple[Any, bool]:
    """Encrypted values stay encrypted: the command needs their presence, never their content."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        items = {k: _strip_secrets(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        items = [_strip_secrets(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def has_secret(value: Any) -> bool:
    return _strip_secrets(value)[1]


def split_secrets(key: str, value: Any) -> tuple[Any, list[str]]:
    """A config value without its encrypted leaves, and the `--path` keys of those leaves.

    Returns (None, [key]) when the whole value is encrypted.
    """
    if isinstance(value, dict) and set(value) == {"secure"}:
        return None, [key]
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        paths: list[str] = []
        for name, item in value.items():
            kept, found = split_secrets(f"{key}.{name}", item)
            paths += found
            if kept is not None:
                plain[name] = kept
        return plain, paths
    if isinstance(value, list):
        kept_items, paths = [], []
        for i, item in enumerate(value):
            kept, found = split_secrets(f"{key}[{i}]", item)
            paths += found
            kept_items.append(kept)
        return kept_items, paths
    return value, []


def raw_stack_config(path: Path) -> dict[str, Any]:
    """A stack file's config exactly as written (secure values included), for copying to a branch."""
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})
