"""Sign what is built: a cosign signature by digest and a build attestation beside each pushed image.

Key mode (DOCKYARD_SIGNING_KEY, a cosign private key; COSIGN_PASSWORD unlocks it) signs offline,
without a transparency-log entry. Keyless mode (in GitHub Actions with `id-token: write`) signs
with a short-lived Fulcio certificate for the workflow's OIDC identity, logged in Rekor.
Signatures and attestations live in the registry beside the image (`sha256-<hex>.sig` / `.att`),
where any cosign-compatible verifier finds them.

`python -m dockyard.release.trust.signing IMAGE...` signs images built elsewhere (CI after the registry's `up`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.images import ImageRef
from dockyard.release.registries.oci import RegistryClients, api_repository
from dockyard.release.trust.gate import PREDICATE_TYPE, REVISION_LABEL, Cosign, image_arg, registry_flags

SIGNING_KEY_ENV = "DOCKYARD_SIGNING_KEY"
GITHUB_OIDC_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"


@dataclass(frozen=True)
class Signed:
    service: str
    ref: str
    signed: bool  # a signature was made now (False: it was already there)
    attested: bool
    seconds: float

    def line(self) -> str:
        if not (self.signed or self.attested):
            return f"  {self.service}: already signed and attested"
        return f"  {self.service}: signed and attested in {self.seconds:.1f} s"


def signing_mode() -> str | None:
    """`key`, `keyless`, or None when this machine has nothing to sign with."""
    if os.environ.get(SIGNING_KEY_ENV):
        return "key"
    if os.environ.get(GITHUB_OIDC_ENV):
        return "keyless"
    return None


def source_repository(project_dir: Path) -> str:
    if os.environ.get("GITHUB_REPOSITORY"):
        return f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}"
    done = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=project_dir, capture_output=True,
                          text=True)
    return done.stdout.strip() or f"file://{project_dir.resolve()}"


def predicate(*, service: str, repository: str, commit: str, inputs: str, builder: str, built_at: str) -> dict[str, Any]:
    """The build attestation's predicate (type https://dockyard.dev/build/v1)."""
    data = {"service": service, "repository": repository, "commit": commit, "inputs": inputs,
            "builder": builder, "builtAt": built_at}
    run = os.environ.get("GITHUB_RUN_ID")
    if run and os.environ.get("GITHUB_REPOSITORY"):
        data["invocation"] = (f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                              f"{os.environ['GITHUB_REPOSITORY']}/actions/runs/{run}")
    return data


class Signer:
    """Signs and attests pinned images with cosign; skips what is already signed."""

    def __init__(self, registries: RegistryClients, mode: str, cosign: Cosign | None = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.registries, self.mode, self.log = registries, mode, log
        self.cosign = cosign or Cosign(registries)

    def _flags(self) -> list[str]:
        if self.mode == "key":
            return ["--key", os.environ[SIGNING_KEY_ENV], "--tlog-upload=false"]
        return []  # keyless: Fulcio certificate for the ambient OIDC token, Rekor entry

    def present(self, ref: ImageRef, suffix: str) -> bool:
        """Is cosign's `sha256-<hex>.<suffix>` artifact in the registry beside the image?"""
        tag = (ref.digest or "").replace(":", "-") + f".{suffix}"
        return self.registries.for_ref(ref).manifest_digest(api_repository(ref), tag) is not None

    def sign(self, service: str, text: str, attestation: dict[str, Any]) -> Signed:
        ref = ImageRef.parse_pinned(text)
        target = image_arg(ref)
        started = time.monotonic()
        signed = attested = False
        if not self.present(ref, "sig"):
            self._run("sign", *self._flags(), *registry_flags(ref), "--yes", target, service=service)
            signed = True
        if not self.present(ref, "att"):
            with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="dockyard-predicate-") as file:
                json.dump(attestation, file)
                file.flush()
                self._run("attest", *self._flags(), *registry_flags(ref), "--yes", "--type", PREDICATE_TYPE,
                          "--predicate", file.name, target, service=service)
            attested = True
        return Signed(service, text, signed, attested, time.monotonic() - started)

    def _run(self, *args: str, service: str) -> None:
        done = self.cosign.run(*args)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise DockyardError(f"{service}: cosign {args[0]} failed: {last}",
                                hint="key mode needs DOCKYARD_SIGNING_KEY and COSIGN_PASSWORD "
                                     "(eval \"$(./scripts/signing env)\"); keyless needs GitHub's id-token: write")


def main(argv: list[str]) -> int:
    """Sign and attest images built elsewhere: each IMAGE pinned by digest, its commit from its revision label."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m dockyard.release.trust.signing IMAGE@sha256:<digest>...", file=sys.stderr)
        return 2 if not argv else 0
    mode = signing_mode()
    if mode is None:
        print(f"error: nothing to sign with: set {SIGNING_KEY_ENV} or run in GitHub Actions with id-token: write",
              file=sys.stderr)
        return 2
    registries = RegistryClients()
    signer = Signer(registries, mode, log=lambda line: print(line, file=sys.stderr))
    repository = source_repository(Path.cwd())
    try:
        for text in argv:
            ref = ImageRef.parse_pinned(text)
            labels = registries.for_ref(ref).image_config(api_repository(ref), ref.digest or "").get(
                "config", {}).get("Labels") or {}
            commit = labels.get(REVISION_LABEL) or os.environ.get("DOCKYARD_COMMIT") or os.environ.get("GITHUB_SHA", "")
            service = ref.repository.rsplit("/", 1)[-1]
            done = signer.sign(service, text, predicate(
                service=service, repository=repository, commit=commit, inputs=labels.get("dev.dockyard.inputs", ""),
                builder=os.environ.get("DOCKYARD_BUILDER", "pulumi-docker (registry stack)"),
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            print(done.line(), file=sys.stderr)
    except DockyardError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
