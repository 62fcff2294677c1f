"""A Kubernetes API client that logs in as kubectl does, through the official `kubernetes` library.

`check` reads a kubeconfig (its text or a path to one) and refuses, in one line naming the
kubeconfig user and the fix, what could not be used: an unknown context, a file that cannot be
read, an exec credential plugin that is not installed or fails, a removed auth-provider. `connect`
returns a `KubeClient` whose reads either answer or raise `KubeError` saying why dockyard could not
look (unreachable, 401, 403 with the API server's own words). The library is imported here only,
inside functions: it costs about a second to import, and `dockyard --help` must not pay it.

What the library leaves out, and this module adds: exec plugin errors are raised instead of logged,
its credentials are cached until `expirationTimestamp` and fetched again on a 401, `proxy-url` is
honoured, relative file paths are read beside the kubeconfig file.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import BadInput, DockyardError

# client.authentication.k8s.io versions kubectl runs (v1alpha1 was removed in Kubernetes 1.24).
EXEC_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# Fetch exec credentials again this long before they expire, as client-go does.
EXPIRY_SKEW = 10.0
# The only auth-provider kubectl still runs; gcp and azure were removed (their exec plugins replace them).
AUTH_PROVIDERS = ("oidc",)
FILES = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}


class KubeError(DockyardError):
    """The API server could not be reached, or refused to answer: dockyard could not look."""


@dataclass(frozen=True)
class Login:
    """One context of a kubeconfig, with relative file paths made absolute: where and who."""

    context: str
    cluster_name: str
    user_name: str
    cluster: dict[str, Any]
    user: dict[str, Any]
    document: dict[str, Any] = field(repr=False)
    directory: Path | None = None

    @property
    def server(self) -> str:
        return str(self.cluster.get("server", "")).rstrip("/")

    @property
    def who(self) -> str:
        return f"kubeconfig user {self.user_name or '(none)'} (context {self.context})"


def _document(source: str) -> tuple[dict[str, Any], Path | None]:
    """`source` is a kubeconfig's content, or a path to one (as pulumi-kubernetes accepts both)."""
    stripped = source.strip()
    directory = None
    if "\n" not in stripped and stripped and Path(stripped).expanduser().is_file():
        path = Path(stripped).expanduser()
        source, directory = path.read_text(), path.parent.resolve()
    try:
        data = yaml.safe_load(source) or {}
    except yaml.YAMLError as err:
        raise BadInput(f"the kubeconfig is not valid YAML: {str(err).splitlines()[0]}",
                       hint="check dockyard:kubernetes.kubeconfig (or $KUBECONFIG) with kubectl config view") from None
    if not isinstance(data, dict):
        raise BadInput("the kubeconfig is not a kubeconfig (expected a mapping with clusters, users, contexts)")
    return data, directory


def _named(data: Mapping[str, Any], kind: str, name: str) -> dict[str, Any] | None:
    for item in data.get(f"{kind}s") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return dict(item.get(kind) or {})
    return None


def check(source: str, context: str | None = None) -> Login:
    """The context dockyard would use, or BadInput naming what kubectl could not use either."""
    data, directory = _document(source)
    contexts = sorted(str(c.get("name")) for c in data.get("contexts") or [] if isinstance(c, dict))
    name = context or data.get("current-context")
    if not name:
        raise BadInput("the kubeconfig names no current-context", hint="set one: pulumi config set "
                       f"dockyard:kubernetes.context <{'|'.join(contexts) or 'context'}>")
    ctx = _named(data, "context", name)
    if ctx is None:
        raise BadInput(f"the kubeconfig has no context {name!r}",
                       hint=f"it has {', '.join(contexts) or 'none'}: fix dockyard:kubernetes.context")
    user_name, cluster_name = str(ctx.get("user") or ""), str(ctx.get("cluster") or "")
    cluster = _named(data, "cluster", cluster_name)
    if cluster is None or not cluster.get("server"):
        raise BadInput(f"context {name} of the kubeconfig names cluster {cluster_name!r}, which has no server",
                       hint="fix the kubeconfig's clusters (kubectl config view shows them)")
    user = _named(data, "user", user_name) if user_name else {}
    if user is None:
        raise BadInput(f"context {name} of the kubeconfig names user {user_name!r}, which it does not define",
                       hint="fix the kubeconfig's users (kubectl config view shows them)")
    login = Login(name, cluster_name, user_name, cluster, user, data, directory)
    for part, entry in (("cluster", cluster), ("user", user)):
        for key in FILES[part]:
            if entry.get(key) and not entry.get(f"{key}-data"):
                path = Path(str(entry[key])).expanduser()
                path = path if path.is_absolute() or directory is None else directory / path
                entry[key] = str(path)
                if not os.access(path, os.R_OK) or not path.is_file():
                    owner = f"kubeconfig cluster {cluster_name}" if part == "cluster" else login.who
                    raise BadInput(f"{owner}: {key} {path} cannot be read",
                                   hint=f"fix the path, or put the content inline as {key}-data"
                                        if key != "tokenFile" else "fix the path, or put the token inline as token")
    proxy = str(cluster.get("proxy-url") or "")
    if proxy and not proxy.startswith(("http://", "https://")):
        raise BadInput(f"kubeconfig cluster {cluster_name}: proxy-url {proxy} is not an http(s) proxy, which is "
                       "all dockyard's client speaks", hint="use an HTTP CONNECT proxy (or reach the server directly)")
    _check_login_method(login)
    return login


def _check_login_method(login: Login) -> None:
    user = login.user
    provider = user.get("auth-provider")
    if provider and (provider.get("name") not in AUTH_PROVIDERS):
        raise BadInput(f"{login.who} logs in through auth-provider {provider.get('name')!r}, which kubectl no "
                       "longer runs either", hint="write the kubeconfig again with the cloud's get-credentials "
                                                  "command: it logs in through an exec plugin instead")
    run = user.get("exec")
    if not run:
        return
    command = str(run.get("command") or "")
    if run.get("apiVersion") not in EXEC_VERSIONS:
        raise BadInput(f"{login.who}: exec apiVersion {run.get('apiVersion')!r} is not one kubectl runs",
                       hint=f"use {' or '.join(EXEC_VERSIONS)} (update the plugin and write the kubeconfig again)")
    found = (shutil.which(command) if os.sep not in command else
             (command if os.access(command, os.X_OK) else None)) if command else None
    if not found:
        install = " ".join(str(run.get("installHint") or "").split())
        raise BadInput(f"{login.who} logs in with exec command {command or '(none)'!r}, which is not installed "
                       "or not on PATH", hint=install or "install it, or pick a context that logs in another way")
    if run.get("interactiveMode") == "Always" and not sys.stdin.isatty():
        raise BadInput(f"{login.who}: its exec plugin {command} needs a terminal (interactiveMode: Always), and "
                       "dockyard runs without one", hint="log in once in a terminal, or use a non-interactive "
                                                        "credential (a CI token or workload identity)")


class KubeClient:
    """Reads of one API server as one kubeconfig user; `get` raises KubeError when it could not look."""

    def __init__(self, login: Login, timeout: float = 10.0) -> None:
        self.login, self.timeout = login, timeout
        self._expires: float | None = None
        self._api = self._build()

    @property
    def server(self) -> str:
        return self.login.server

    def _build(self) -> Any:
        from kubernetes import client, config

        document = json.loads(json.dumps(self.login.document))  # a copy the library may keep
        for entry in document.get("users") or []:
            if isinstance(entry, dict) and entry.get("name") == self.login.user_name:
                # The user as checked (absolute paths), without exec: that part runs here, where its
                # failure is raised rather than logged, and its expiry is kept.
                entry["user"] = {k: v for k, v in self.login.user.items() if k not in ("exec", "tokenFile")}
                if self.login.user.get("tokenFile") and not self.login.user.get("token"):
                    # Read here, trimmed as kubectl trims it (the library sends its newline along), and
                    # read again on a 401: a projected token file rotates.
                    entry["user"]["token"] = Path(self.login.user["tokenFile"]).read_text().strip()
        for entry in document.get("clusters") or []:
            if isinstance(entry, dict) and entry.get("name") == self.login.cluster_name:
                entry["cluster"] = self.login.cluster
        configuration = client.Configuration()
        config.load_kube_config_from_dict(document, context=self.login.context, persist_config=False,
                                          client_configuration=configuration)
        if self.login.cluster.get("proxy-url"):
            configuration.proxy = self.login.cluster["proxy-url"]
        configuration.retries = 1  # one quick retry of a dropped connection; the caller polls anyway
        if self.login.user.get("exec"):
            self._exec_credentials(configuration)
        return client.ApiClient(configuration)

    def _exec_credentials(self, configuration: Any) -> None:
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.config.exec_provider import ExecProvider
        from kubernetes.config.kube_config import ConfigNode

        run = self.login.user["exec"]
        cluster = {k: v for k, v in self.login.cluster.items() if k != "certificate-authority"}
        if self.login.cluster.get("certificate-authority"):
            ca = Path(self.login.cluster["certificate-authority"]).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        try:
            status = ExecProvider(ConfigNode("exec", run), str(self.login.directory or Path.cwd()),
                                  ConfigNode("cluster", cluster)).run()
        except (ConfigException, OSError) as err:
            raise BadInput(f"{self.login.who}: its exec plugin {run.get('command')} failed: "
                           f"{' '.join(str(err).split())[:300]}",
                           hint="run it yourself to see why (often: log in to the cloud again), then retry") from None
        if status.get("token"):
            configuration.api_key["BearerToken"] = f"Bearer {status['token']}"
        elif status.get("clientCertificateData") and status.get("clientKeyData"):
            configuration.cert_file = _private_file(status["clientCertificateData"])
            configuration.key_file = _private_file(status["clientKeyData"])
        else:
            raise BadInput(f"{self.login.who}: its exec plugin {run.get('command')} returned neither a token nor "
                           "a client certificate and key", hint="update the plugin, or log in again")
        self._expires = None
        if status.get("expirationTimestamp"):
            stamp = str(status["expirationTimestamp"]).replace("Z", "+00:00")
            expires = datetime.fromisoformat(stamp)
            expires = expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)
            self._expires = time.monotonic() + (expires - datetime.now(timezone.utc)).total_seconds()

    def _renew(self) -> None:
        try:
            self._api = self._build()
        except BadInput as err:
            raise KubeError(err.message, hint=err.hint) from None
        except OSError as err:
            raise KubeError(f"{self.login.who}: could not log in again: {err}",
                            hint="check the kubeconfig's files (kubectl config view)") from None

    def request(self, path: str, *, method: str = "GET", query: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """`method` `path` on the API server: (status, body); status 0 when nothing answered."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        for attempt in (0, 1):
            if self._expires is not None and time.monotonic() >= self._expires - EXPIRY_SKEW:
                self._renew()
            try:
                response = self._api.call_api(path, method, query_params=list((query or {}).items()),
                                              header_params={"Accept": "application/json"},
                                              auth_settings=["BearerToken"], _preload_content=False,
                                              _request_timeout=self.timeout)
                return response.status, response.data
            except ApiException as err:
                if err.status == 401 and attempt == 0 and (self.login.user.get("exec")
                                                           or self.login.user.get("tokenFile")):
                    self._renew()  # revoked or expired early: the plugin's next credential may do
                    continue
                body = err.body if isinstance(err.body, bytes) else str(err.body or "").encode()
                return int(err.status or 0), body
            except (urllib3.exceptions.HTTPError, OSError) as err:
                reason = getattr(err, "reason", None) or err
                return 0, " ".join(str(reason).split()).encode()
        raise AssertionError("unreachable")

    def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        status, body = self.request(path, query=query)
        if status != 200:
            raise self.error(status, body, path)
        return json.loads(body)

    def error(self, status: int, body: bytes, path: str) -> KubeError:
        """Why dockyard could not look, in one line, with the fix."""
        where = f"the API server {self.server}"
        if status == 0:
            return KubeError(f"could not reach {where} ({self.login.who}): {body.decode(errors='replace')[:200]}",
                             hint="check that the cluster is up and that this machine reaches it "
                                  f"(kubectl --context {self.login.context} get --raw /version)")
        message = _message(body)
        if status == 401:
            return KubeError(f"{where} refused the credentials of {self.login.who} (401 Unauthorized)",
                             hint="log in again: the token or certificate expired or was revoked")
        if status == 403:
            return KubeError(f"{self.login.who} is not allowed to look: {message}",
                             hint="grant what deploy/rbac/dockyard-deployer.yaml lists to that user")
        return KubeError(f"GET {path} on {where}: HTTP {status}: {message}")


def _message(body: bytes) -> str:
    try:
        return " ".join(str(json.loads(body).get("message", "")).split())[:300]
    except (ValueError, AttributeError):
        return " ".join(body.decode(errors="replace").split())[:200]


_FILES: list[str] = []


def _private_file(content: str) -> str:
    """The library's HTTP pool reads a client certificate from files only: a private one, removed at exit."""
    handle, path = tempfile.mkstemp(prefix="dockyard-kube-", suffix=".pem")
    with os.fdopen(handle, "w") as out:
        out.write(content)
    if not _FILES:
        atexit.register(lambda: [Path(p).unlink(missing_ok=True) for p in _FILES])
    _FILES.append(path)
    return path


def warm_up() -> None:
    """Import the library on a thread of its own, while the engine's `up` runs: the verification after
    it then starts at once instead of paying the import (a few hundred milliseconds)."""
    if "kubernetes.client" not in sys.modules:
        import importlib
        import threading

        threading.Thread(target=importlib.import_module, args=("kubernetes.client",), daemon=True).start()


_CLIENTS: dict[tuple[str, str | None], KubeClient] = {}


def connect(source: str, context: str | None = None, *, timeout: float = 10.0) -> KubeClient:
    """A client of the kubeconfig's context (checked first: BadInput for what cannot be used).

    One per kubeconfig and context in a process: the pre-flight check before `up` and the
    verification after it share the exec plugin's credential.
    """
    key = (source, context)
    if key not in _CLIENTS:
        _CLIENTS[key] = KubeClient(check(source, context), timeout)
    return _CLIENTS[key]
