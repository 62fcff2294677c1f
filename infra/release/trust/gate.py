"""The trust gate: before a release is written, prove every new image was signed (and attested) by a signer
the environment's `dockyard:trust` names. cosign does the cryptography; this module decides and explains.

Which commit an image's attestation must name: the one the release store already
records for that image (carried from the environment it is promoted from, or from the
release a rollback restores), else the commit baked into the image itself (its
`org.opencontainers.image.revision` label, which the signed digest covers), else the
release's own commit. With none of those known, the attested commit is recorded, not compared.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from dockyard.errors import BadInput, DockyardError
from dockyard.images import ImageRef
from dockyard.manifest import Release, Verification
from dockyard.release.context import Context
from dockyard.release.registries.oci import RegistryClients, api_host, api_repository, plain_http
from dockyard.release.project import Environment
from dockyard.config.trust import TrustPolicy

PREDICATE_TYPE = "https://dockyard.dev/build/v1"
REVISION_LABEL = "org.opencontainers.image.revision"
COSIGN_ENV = "DOCKYARD_COSIGN"
TIMEOUT = 180


class Untrusted(Exception):
    """One image failed the policy; `reason` is what the refusal line says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Verifier(Protocol):
    def verify(self, ref: ImageRef, policy: TrustPolicy, *, commit: str | None, base_dir: Path) -> Verification:
        """What proves `ref` under `policy`; raises Untrusted when nothing does."""

    def revision(self, ref: ImageRef) -> str | None:
        """The commit the image itself records, or None."""


# ----------------------------------------------------------------------------- the gate


def check(ctx: Context, env: Environment, images: Mapping[str, str], *, verb: str,
          recorded: Mapping[str, Verification] | None = None, commit: str | None = None) -> dict[str, Verification]:
    """Verify `images` (service -> pinned ref) against `env`'s policy before anything is written.

    The first image that fails stops the command: exit 2, one line naming the service, the digest and
    the reason. Returns what was proven per service (empty when the policy is `none`).
    """
    policy = getattr(env.settings, "trust", None)
    if policy is None:
        raise BadInput(f"{env.name} has no trust policy (dockyard:trust): nothing is {verb} into it until it says "
                       "who may sign its images",
                       hint=f"set dockyard:trust in Pulumi.{env.name}.yaml to the keys or OIDC identities that may "
                            "sign (README: Signed images), or to none to allow unverified images explicitly")
    if not policy.verify or not images:
        return {}
    verifier = verifier_of(ctx)
    proven = {}
    for service, text in sorted(images.items()):
        ref = ImageRef.parse_pinned(text)
        known = (recorded or {}).get(service)
        expected = (known.commit if known else None) or _revision(verifier, ref) or commit
        try:
            proof = verifier.verify(ref, policy, commit=expected, base_dir=ctx.project.dir)
        except Untrusted as err:
            raise BadInput(f"{service}: {ref.digest}: {err.reason}",
                           hint=f"{env.name} trusts {policy.describe()}; sign it with `dockyard build --local` "
                                "(or CI's build workflow), or promote a release whose images are signed") from None
        what = f"; attested commit {proof.commit[:12]}" if proof.commit else ""
        ctx.log(f"  {service}: signed by {proof.signer}{what}")
        proven[service] = proof
    return proven


def unverified_warning(env: Environment) -> str | None:
    """`status`'s warning for an environment that promotes images nobody proved, or None."""
    policy = getattr(env.settings, "trust", None)
    if policy is None:
        return "no dockyard:trust: promotions refuse until it is set"
    if not policy.verify:
        return "dockyard:trust is none: promotes unverified images"
    return None


def merged(base: Release | None, proven: Mapping[str, Verification], images: Mapping[str, str]) -> dict[str, Verification]:
    """What the new release records: fresh proofs, and the base's for images it keeps unchanged."""
    kept = {}
    if base is not None:
        old = base.image_strings()
        kept = {s: v for s, v in base.verified.items() if s in images and old.get(s) == images[s]}
    return {**kept, **proven}


def verifier_of(ctx: Context) -> Verifier:
    if ctx.verifier is None:
        ctx.verifier = Cosign(ctx.registries)
    return ctx.verifier


def _revision(verifier: Verifier, ref: ImageRef) -> str | None:
    try:
        return verifier.revision(ref)
    except DockyardError:
        return None  # no readable label: fall back to what the release records


# ----------------------------------------------------------------------------- cosign


def find_cosign() -> str:
    """$DOCKYARD_COSIGN, cosign on PATH, or the one scripts/build-cosign cached."""
    explicit = os.environ.get(COSIGN_ENV)
    if explicit:
        return explicit
    found = shutil.which("cosign")
    if found:
        return found
    tools = Path(os.environ.get("DOCKYARD_TOOLS") or Path.home() / ".cache" / "dockyard" / "tools")
    cached = sorted(tools.glob("cosign-*/cosign"))
    if cached:
        return str(cached[-1])
    raise DockyardError("cosign is not installed: signing and verifying images needs it",
                        hint="./scripts/build-cosign builds it (./scripts/setup does too), or set DOCKYARD_COSIGN")


def image_arg(ref: ImageRef) -> str:
    """The reference cosign is given: by digest alone, so a tag never decides what is checked."""
    return f"{ref.registry + '/' if ref.registry else ''}{ref.repository}@{ref.digest}"


def registry_flags(ref: ImageRef) -> list[str]:
    return ["--allow-insecure-registry"] if plain_http(api_host(ref.registry)) else []


def key_id(pem: str) -> str:
    """A public key's id: sha256 of its DER bytes (what `openssl pkey -pubin -outform der | sha256sum` gives)."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return "sha256:" + hashlib.sha256(base64.b64decode(body)).hexdigest()


def read_key(key: str, base_dir: Path) -> str:
    if "-----BEGIN" in key:
        return key
    path = Path(os.path.expandvars(key)).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        return path.read_text()
    except OSError as err:
        raise BadInput(f"dockyard:trust.keys: cannot read {path}: {err.strerror}",
                       hint="./scripts/signing env shows the local key; CI trusts an OIDC identity instead") from None


class Cosign:
    """cosign verify / verify-attestation, key by key and identity by identity, until one signer proves it."""

    def __init__(self, registries: RegistryClients, binary: str | None = None) -> None:
        self.registries = registries
        self.binary = binary
        self.calls = 0

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        self.binary = self.binary or find_cosign()
        self.calls += 1
        try:
            return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=TIMEOUT,
                                  env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired:
            raise DockyardError(f"cosign {args[0]} did not finish within {TIMEOUT} s") from None

    def revision(self, ref: ImageRef) -> str | None:
        client = self.registries.for_ref(ref)
        labels = client.image_config(api_repository(ref), ref.digest or "").get("config", {}).get("Labels") or {}
        return labels.get(REVISION_LABEL) or None

    def verify(self, ref: ImageRef, policy: TrustPolicy, *, commit: str | None, base_dir: Path) -> Verification:
        target = image_arg(ref)
        reasons = []
        with tempfile.TemporaryDirectory(prefix="dockyard-trust-") as scratch:
            signers: list[tuple[list[str], Verification]] = []
            for i, key in enumerate(policy.keys):
                pem = read_key(key, base_dir)
                path = Path(scratch) / f"key-{i}.pub"
                path.write_text(pem)
                kid = key_id(pem)
                # Key signatures made offline have no transparency-log entry to check (README: Signed images).
                signers.append((["--key", str(path), "--insecure-ignore-tlog=true"],
                                Verification(signer=f"key {kid[:19]}", key_id=kid)))
            for identity in policy.identities:
                signers.append((["--certificate-oidc-issuer", identity.issuer,
                                 "--certificate-identity-regexp", identity.subject],
                                Verification(signer=f"{identity.subject} ({identity.issuer})",
                                             identity=f"{identity.issuer} {identity.subject}")))
            for flags, who in signers:
                done = self.run("verify", *flags, *registry_flags(ref), "--output", "json", target)
                if done.returncode == 0:
                    signer = _signed_identity(done.stdout, who)
                    if not policy.attestation:
                        return signer
                    return self._attested(ref, target, flags, signer, commit)
                reasons.append(_signature_reason(done.stderr))
        if any(r == "not signed" for r in reasons) and len(set(reasons)) == 1:
            raise Untrusted("not signed (no signature in the registry beside it)")
        shown = next((r for r in reasons if r != "not signed"), reasons[0] if reasons else "no signer configured")
        raise Untrusted(shown)

    def _attested(self, ref: ImageRef, target: str, flags: list[str], signer: Verification,
                  commit: str | None) -> Verification:
        done = self.run("verify-attestation", "--type", PREDICATE_TYPE, *flags, *registry_flags(ref), target)
        if done.returncode != 0:
            reason = _signature_reason(done.stderr)
            raise Untrusted("no build attestation (" + PREDICATE_TYPE + ") from that signer"
                            if reason in ("not signed", "signed, but not by a key or identity this environment trusts")
                            else f"attestation: {reason}")
        statements = []
        for line in done.stdout.splitlines():
            if not line.strip().startswith("{"):
                continue
            payload = base64.b64decode(json.loads(line)["payload"])
            statement = json.loads(payload)
            if statement.get("predicateType") != PREDICATE_TYPE:
                continue
            statements.append(("sha256:" + hashlib.sha256(payload).hexdigest(), statement.get("predicate") or {}))
        if not statements:
            raise Untrusted(f"no build attestation ({PREDICATE_TYPE}) from that signer")
        chosen = [s for s in statements if commit is None or s[1].get("commit") == commit]
        if not chosen:
            named = ", ".join(sorted({str(p.get("commit"))[:12] for _, p in statements}))
            raise Untrusted(f"its attestation names commit {named}, not {commit[:12]}, the commit this release "
                            "records for it")
        digest, predicate = max(chosen, key=lambda s: str(s[1].get("builtAt", "")))
        return Verification(signer=signer.signer, key_id=signer.key_id, identity=signer.identity,
                            attestation=digest, commit=predicate.get("commit"))


def _signed_identity(stdout: str, who: Verification) -> Verification:
    """For keyless signers, the exact subject of the certificate (the workflow run's identity)."""
    if who.identity is None:
        return who
    try:
        optional = (json.loads(stdout)[0].get("optional") or {})
    except (ValueError, IndexError, AttributeError):
        return who
    subject, issuer = optional.get("Subject"), optional.get("Issuer")
    if not subject:
        return who
    return Verification(signer=f"{subject} ({issuer or '?'})", identity=f"{issuer or '?'} {subject}")


_NOT_SIGNED = re.compile(r"no signatures found|no matching attestations: $|MANIFEST_UNKNOWN|no attestations found",
                         re.IGNORECASE)


def _signature_reason(stderr: str) -> str:
    text = stderr.strip()
    if _NOT_SIGNED.search(text):
        return "not signed"
    if re.search(r"no matching (signatures|attestations)", text):
        if re.search(r"digest|payload|mismatch|tamper", text, re.IGNORECASE) and "validating ASN.1" not in text:
            return "its signature does not match the image (tampered or for another digest)"
        return "signed, but not by a key or identity this environment trusts"
    last = next((line for line in reversed(text.splitlines()) if line.startswith("Error")), text[-200:])
    return f"cosign could not verify it: {last.strip()}"
