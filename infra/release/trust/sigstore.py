"""Where cosign gets Sigstore's trust material, and telling "could not check" from "not trusted".

A signature is only "not trusted" when cosign could look and found no signer the policy
names. When Sigstore's TUF repository, Rekor or Fulcio cannot be reached (an air-gapped
runner, an outage, a proxy), nothing was decided about the image: that is exit 1 with the
cause and the fix, never exit 2. A private Sigstore comes from `dockyard:trust.sigstore`
(a trusted_root.json, or a TUF mirror with its root.json) or from cosign's own environment
(`TUF_ROOT`, `SIGSTORE_ROOT_FILE`, `SIGSTORE_REKOR_PUBLIC_KEY`, `SIGSTORE_CT_LOG_PUBLIC_KEY_FILE`),
which is passed through untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from dockyard.errors import BadInput, DockyardError
from dockyard.config.trust import TrustPolicy

_NETWORK = re.compile(r"dial tcp|no such host|connection refused|i/o timeout|deadline exceeded|"
                      r"network is unreachable|no route to host|TLS handshake timeout|server misbehaving|"
                      r"connection reset by peer|proxyconnect|Client\.Timeout exceeded|temporary failure in "
                      r"name resolution", re.IGNORECASE)
_SERVICES = (("tuf", "Sigstore's TUF repository (its trusted root)"), ("rekor", "the Rekor transparency log"),
             ("fulcio", "Fulcio"), ("ctlog", "the certificate transparency log"))


class CannotVerify(DockyardError):
    """Sigstore's infrastructure did not answer: nothing is known about the image (exit 1)."""


def unreachable(stderr: str) -> str | None:
    """The line of cosign's output that says a Sigstore service (or the network) could not be reached."""
    # cosign warns about an unreachable TUF repository and carries on with what it has: only the error
    # it stopped on says whether the network decided the outcome.
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    errors = [line for line in lines if line.startswith("Error")] or lines[-1:]
    return errors[-1] if errors and _NETWORK.search(errors[-1]) else None


def cannot_verify(line: str, policy: TrustPolicy | None) -> CannotVerify:
    lowered = line.lower()
    what = next((name for key, name in _SERVICES if key in lowered), "a Sigstore service")
    private = policy is not None and (policy.sigstore.trusted_root or policy.sigstore.tuf_mirror)
    hint = ("check that the private Sigstore named in dockyard:trust.sigstore answers from this runner"
            if private else
            "if this runner cannot reach Sigstore (air-gapped, a proxy), give it the trust material: "
            "dockyard:trust.sigstore.trustedRoot (a trusted_root.json) or tufMirror + tufRoot, or cosign's "
            "TUF_ROOT / SIGSTORE_* variables; key-signed images verify without a network with "
            "dockyard:trust.offline: true; otherwise run it again once Sigstore answers")
    detail = line.removeprefix("Error: ")
    return CannotVerify(f"{what} could not be reached, so nothing was decided about it ({detail[-240:]})",
                        hint=hint)


def resolve(path: str, base_dir: Path) -> Path:
    found = Path(os.path.expandvars(path)).expanduser()
    return found if found.is_absolute() else base_dir / found


def verify_flags(policy: TrustPolicy, base_dir: Path) -> list[str]:
    """cosign verify flags that every signer shares: the trusted root, the log, offline."""
    flags = []
    if policy.sigstore.trusted_root:
        root = resolve(policy.sigstore.trusted_root, base_dir)
        if not root.is_file():
            raise BadInput(f"dockyard:trust.sigstore.trustedRoot: {root} does not exist",
                           hint="cosign trusted-root create, or copy the deployment's trusted_root.json there")
        flags += ["--trusted-root", str(root)]
    if policy.sigstore.rekor_url:
        flags += ["--rekor-url", policy.sigstore.rekor_url]
    if policy.offline:
        flags.append("--offline=true")
    return flags


def key_flags(policy: TrustPolicy) -> list[str]:
    # Key signatures made offline have no transparency-log entry to check (README: Signed images),
    # unless the policy asks for one.
    return [] if policy.tlog else ["--insecure-ignore-tlog=true"]


def identity_flags(policy: TrustPolicy) -> list[str]:
    # A private CA without a log (trust.tlog: false, only with trust.sigstore): no log entry, no SCT.
    return ["--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"] if policy.tlog is False else []


def tuf_env(policy: TrustPolicy, base_dir: Path, initialize: Callable[[dict[str, str], list[str]], str]) -> dict[str, str]:
    """TUF_ROOT for a private TUF mirror, initialized once from its out-of-band root.json.

    `initialize(env, args)` runs `cosign initialize` and returns its error output ("" on success).
    """
    mirror, root_file = policy.sigstore.tuf_mirror, policy.sigstore.tuf_root
    if not mirror or not root_file:
        return {}
    root = resolve(root_file, base_dir)
    try:
        root_bytes = root.read_bytes()
    except OSError as err:
        raise BadInput(f"dockyard:trust.sigstore.tufRoot: cannot read {root}: {err.strerror}",
                       hint="copy the TUF repository's root.json there (obtained out of band)") from None
    cache = Path(os.environ.get("DOCKYARD_SIGSTORE_CACHE") or Path.home() / ".cache" / "dockyard" / "sigstore")
    directory = cache / hashlib.sha256(mirror.encode() + b"\0" + root_bytes).hexdigest()[:16]
    env = {"TUF_ROOT": str(directory)}
    marker = directory / ".dockyard-initialized"
    if not marker.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        failed = initialize(env, ["initialize", "--mirror", mirror, "--root", str(root)])
        if failed:
            line = unreachable(failed)
            if line:
                raise cannot_verify(line, policy)
            last = (failed.strip().splitlines() or ["(no output)"])[-1]
            raise BadInput(f"dockyard:trust.sigstore: cosign initialize --mirror {mirror} failed: {last}",
                           hint="check tufMirror and that tufRoot is that repository's root.json")
        marker.write_text(mirror + "\n")
    return env
