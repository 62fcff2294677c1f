"""The validators every part of the configuration shares: one value in, the checked value out, or one
ConfigError naming the key path, the value and what is allowed (`dockyard:<path>: got <value>; expected …`).

Pure: no resources, no I/O. Pulumi hands values over as strings (objects as JSON text), so each
validator accepts the string form too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from dockyard import naming
from dockyard.errors import BadInput, ConfigError

# The `dockyard` command reads stack files without decrypting them: a secret value
# arrives as this sentinel, and text checks accept it (the engine checks the real value).
ENCRYPTED = "[secret]"

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
QUALIFIED_STACK = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{LABEL_NAME}$")
LABEL_VALUE = re.compile(rf"^({LABEL_NAME})?$")


T = TypeVar("T")


def fail(path: str, value: Any, expected: str) -> ConfigError:
    shown = value if isinstance(value, (int, float, bool)) else repr(value)
    if isinstance(shown, str) and len(shown) > 80:
        shown = shown[:77] + "..."
    return ConfigError(f"dockyard:{path}: got {shown}; expected {expected}")


def decode(path: str, value: Any) -> Any:
    """Pulumi hands object values over as JSON text, and scalars as strings."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null"):
            try:
                return json.loads(stripped)
            except ValueError:
                raise fail(path, value, "valid JSON") from None
    return value


def mapping(path: str, value: Any, *, default: Any) -> Any:
    value = decode(path, value)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise fail(path, value, "an object (set it with pulumi config set --path)")
    return value


def known_keys(path: str, entry: Mapping[str, Any], known: tuple[str, ...],
                others: tuple[tuple[str, ...], str] | None = None) -> None:
    for key in entry:
        if key in known:
            continue
        if others and key in others[0]:
            raise ConfigError(f"dockyard:{path}.{key} applies to role {others[1]} only")
        raise ConfigError(f"dockyard:{path}.{key} is not a setting here; known keys: {', '.join(known)}")


def service_name(name: str) -> str:
    try:
        return naming.validate_service_name(name)
    except BadInput as err:
        raise ConfigError(f"dockyard:services: {err.message}") from None


def text(path: str, value: Any) -> str:
    if value == ENCRYPTED:
        return value
    if not isinstance(value, str) or not value.strip():
        raise fail(path, value, "a non-empty string")
    return value


def choice(path: str, value: Any, allowed: tuple[T, ...]) -> T:
    if value not in allowed or isinstance(value, bool):
        raise fail(path, value, "one of " + ", ".join(str(a) for a in allowed))
    return value


def boolean(path: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(path, value, "true or false")


def integer(path: str, value: Any, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        number = int(value)
    if number is None or not low <= number <= high:
        raise fail(path, value, f"a whole number from {low} to {high}")
    return number


def matches(path: str, value: Any, pattern: re.Pattern[str], expected: str) -> Any:
    if value is None or value == ENCRYPTED:
        return value
    if not isinstance(value, str) or not pattern.match(value):
        raise fail(path, value, expected)
    return value


def string_map(path: str, value: Any, key_pattern: re.Pattern[str], keys: str) -> dict[str, str]:
    entry = mapping(path, value, default={}) or {}
    result = {}
    for key, item in entry.items():
        if not key_pattern.match(key):
            raise fail(f"{path}.{key}", key, keys)
        if isinstance(item, bool):
            item = "true" if item else "false"
        if not isinstance(item, (str, int, float)):
            raise fail(f"{path}.{key}", item, "a string, number or boolean")
        result[key] = str(item)
    return result


def command(path: str, value: Any) -> tuple[str, ...] | None:
    value = decode(path, value)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise fail(path, value, 'a command as a list of strings, like ["python", "worker.py", "--check"]')
    return tuple(value)


def parameter(path: str, value: Any, stack: str) -> str:
    name = naming.release_parameter(stack) if value is None else value
    try:
        return naming.validate_parameter_name(name)
    except BadInput as err:
        raise ConfigError(f"dockyard:{path}: {err.message}") from None


def qualified_stack(path: str, value: Any) -> str:
    return matches(path, text(path, value), QUALIFIED_STACK, "a fully qualified stack, <organization>/<project>/<stack>")


def ranges(values: tuple[int, ...]) -> str:
    if len(values) > 3:
        step = values[1] - values[0]
        return f"{values[0]} to {values[-1]} in steps of {step}"
    return ", ".join(map(str, values))

