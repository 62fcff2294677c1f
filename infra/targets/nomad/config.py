"""`dockyard:nomad`: where a `target: nomad` app stack runs its job (pure: raw config in, NomadSettings out)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ConfigError

KEYS = ("address", "namespace", "region", "token", "datacenters", "renderDir")

_ADDRESS = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$|^https?://\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?/?$")
# Nomad's own rules: namespaces and datacenters are plain names; a region is a name too.
_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")
_DATACENTER = re.compile(r"^[a-zA-Z0-9*_-]{1,128}$")


@dataclass(frozen=True)
class NomadSettings:
    """The Nomad cluster of a `target: nomad` stack.

    address None: the provider (and the command) use NOMAD_ADDR, as the nomad CLI does.
    render_dir set: job specifications are written there as JSON (for GitOps or `nomad job run`);
    with an address too, `dockyard` itself submits the rendered job there.
    """

    address: str | None = None
    namespace: str = "default"
    region: str = "global"
    token: str | None = None  # secret: only handed to the provider as a secret Output
    datacenters: tuple[str, ...] = ("*",)
    render_dir: str | None = None


def parse(raw: Any, *, is_secret: bool) -> NomadSettings:
    """Validate `dockyard:nomad` (a JSON object, or the parsed dict Pulumi hands over)."""
    import json

    if raw is None:
        return NomadSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ConfigError(f"dockyard:nomad: got {raw!r}; expected an object of {', '.join(KEYS)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"dockyard:nomad: got {raw!r}; expected an object of {', '.join(KEYS)}")
    for key in sorted(raw):
        if key not in KEYS:
            raise ConfigError(f"dockyard:nomad.{key} is not a dockyard setting; known keys: {', '.join(KEYS)}")
    defaults = NomadSettings()
    token = raw.get("token")
    if token is not None:
        if not is_secret:
            raise ConfigError("dockyard:nomad.token is stored in plain text; it is an ACL token",
                              hint="pulumi config set --secret --path 'dockyard:nomad.token' <secret-id>")
        if not isinstance(token, str) or not token:
            raise ConfigError("dockyard:nomad.token: expected the ACL token's secret ID")
    address = raw.get("address")
    if address is not None and (not isinstance(address, str) or not _ADDRESS.match(address)):
        raise ConfigError(f"dockyard:nomad.address: got {address!r}; expected an http(s) URL like "
                          "http://127.0.0.1:4646")
    namespace = raw.get("namespace", defaults.namespace)
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        raise ConfigError(f"dockyard:nomad.namespace: got {namespace!r}; expected a Nomad namespace name "
                          "(letters, digits, '-'; at most 128)")
    region = raw.get("region", defaults.region)
    if not isinstance(region, str) or not _NAME.match(region):
        raise ConfigError(f"dockyard:nomad.region: got {region!r}; expected a Nomad region name like global")
    datacenters = raw.get("datacenters", list(defaults.datacenters))
    if (not isinstance(datacenters, list) or not datacenters
            or not all(isinstance(d, str) and _DATACENTER.match(d) for d in datacenters)):
        raise ConfigError(f"dockyard:nomad.datacenters: got {datacenters!r}; expected a non-empty list of "
                          "datacenter names like [\"dc1\"] (\"*\" matches every one)")
    if len(set(datacenters)) != len(datacenters):
        raise ConfigError(f"dockyard:nomad.datacenters: got {datacenters!r}; a datacenter is listed twice")
    render_dir = raw.get("renderDir")
    if render_dir is not None and (not isinstance(render_dir, str) or not render_dir.strip()):
        raise ConfigError(f"dockyard:nomad.renderDir: got {render_dir!r}; expected a directory path")
    return NomadSettings(address=address.rstrip("/") if address else None, namespace=namespace, region=region,
                         token=token, datacenters=tuple(datacenters), render_dir=render_dir)
