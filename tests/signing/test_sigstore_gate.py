"""The trust gate with real cosign when Sigstore is out of reach or private: "could not check" is exit 1,
a private trusted root and offline key checks work without any network, identity patterns match whole.

Every outbound request cosign makes goes to a closed port on loopback (HTTPS_PROXY), so the
tests behave as on an air-gapped runner whatever the machine can reach.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from dockyard.errors import BadInput, DockyardError
from dockyard.release.project import Project
from dockyard.release.trust.sigstore import CannotVerify
from tests.signing.test_cosign_gate import COMMIT, cosign, keys, promote, push, registry, sign, store  # noqa: F401 (fixtures)
from tests.support.oci_registry import free_port

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/shop/.github/workflows/build.yml@refs/heads/"
MAIN = r"^https://github\.com/acme/shop/\.github/workflows/build\.yml@refs/heads/main$"


@pytest.fixture(autouse=True)
def air_gapped(tmp_path, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, closed)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the loopback registry itself stays reachable
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("TUF_ROOT", str(tmp_path / "tuf"))  # no cached Sigstore root from earlier runs
    monkeypatch.setenv("DOCKYARD_SIGSTORE_CACHE", str(tmp_path / "sigstore-cache"))


def project_with(tmp_path: Path, trust: dict) -> Project:
    (tmp_path / "Pulumi.yaml").write_text("name: dockyard\nruntime: python\n")
    (tmp_path / "Pulumi.registry.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "registry", "dockyard:registry": "external", "dockyard:publish": False,
        "dockyard:services": {"web": {}}, "dockyard:prebuilt": {"web": "r.example/web@sha256:" + "0" * 64}}}))
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": {
        "dockyard:role": "app", "dockyard:target": "kubernetes", "dockyard:imageSource": "file",
        "dockyard:releaseDir": "releases", "dockyard:kubernetes": {"renderDir": "rendered"},
        "dockyard:services": {"web": {"port": 8080}}, "dockyard:trust": trust}}))
    return Project(tmp_path)


class PrivateCa:
    """A Fulcio-like CA of our own: certificates for a key, naming a workflow identity and an issuer."""

    def __init__(self, directory: Path, cosign_binary: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory, self._now = directory, datetime.datetime.now(datetime.timezone.utc)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test signing CA")])
        ca = (x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
              .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(self._now - datetime.timedelta(hours=1))
              .not_valid_after(self._now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .sign(self._key, hashes.SHA256()))
        self.chain = directory / "ca.pem"
        self.chain.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.trusted_root = directory / "trusted_root.json"
        subprocess.run([cosign_binary, "trusted-root", "create", "--out", str(self.trusted_root),
                        f"--fulcio=url=https://fulcio.internal.example,certificate-chain={self.chain}"],
                       check=True, capture_output=True)

    def certificate(self, public_key: Path, identity: str, issuer: str = ISSUER) -> Path:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

        utf8 = bytes([0x0C, len(issuer)]) + issuer.encode()  # Fulcio's issuer extension v2: a DER UTF8String
        cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self._name)
                .public_key(serialization.load_pem_public_key(public_key.read_bytes()))
                .serial_number(x509.random_serial_number())
                .not_valid_before(self._now - datetime.timedelta(minutes=5))
                .not_valid_after(self._now + datetime.timedelta(hours=12))
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), utf8),
                               critical=False)
                # ... and v1, raw bytes, which is the one cosign 2.x reads the issuer from.
                .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.1"),
                                                          issuer.encode()), critical=False)
                .sign(self._key, hashes.SHA256()))
        path = self.directory / f"cert-{abs(hash(identity))}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path


def sign_with_certificate(cosign_binary: str, ref: str, key: Path, certificate: Path, chain: Path) -> None:
    subprocess.run([cosign_binary, "sign", "--key", str(key) + ".key", "--certificate", str(certificate),
                    "--certificate-chain", str(chain), "--tlog-upload=false", "--allow-insecure-registry",
                    "--yes", ref], check=True, capture_output=True, env={**os.environ, "COSIGN_PASSWORD": ""})


def test_unreachable_sigstore_is_exit_1_naming_the_cause_and_the_fix_and_writes_nothing(tmp_path, registry, keys,
                                                                                       monkeypatch):
    project = project_with(tmp_path, {"identities": [{"issuer": ISSUER, "subject": MAIN}]})
    ref = push(registry, "shop/web", "air-gapped", COMMIT)
    sign(ref, keys["ours"], COMMIT, monkeypatch)
    with pytest.raises(DockyardError) as err:
        promote(project, ref)
    assert not isinstance(err.value, BadInput) and err.value.exit_code == 1, err.value
    assert isinstance(err.value, CannotVerify)
    assert "could not check its signature: Sigstore's TUF repository" in err.value.message
    assert "could not be reached" in err.value.message
    assert "dockyard:trust.sigstore.trustedRoot" in (err.value.hint or "")
    assert not (project.dir / "releases").exists() or store(project) == []


def test_key_signed_images_verify_offline(tmp_path, registry, keys, monkeypatch):
    project = project_with(tmp_path, {"keys": [str(keys["ours"]) + ".pub"], "offline": True})
    ref = push(registry, "shop/web", "offline", COMMIT)
    sign(ref, keys["ours"], COMMIT, monkeypatch)
    result = promote(project, ref)
    assert result.version == 1
    (release,) = [json.loads(t) for t in store(project) if '"images"' in t]
    assert release["verified"]["web"]["commit"] == COMMIT


def test_a_private_trusted_root_verifies_identities_without_tuf_and_patterns_match_whole(tmp_path, registry, keys,
                                                                                        cosign):  # noqa: F811
    ca = PrivateCa(tmp_path, cosign)
    trust = {"identities": [{"issuer": ISSUER, "subject": MAIN}], "require": ["signature"],
             "sigstore": {"trustedRoot": str(ca.trusted_root)}, "tlog": False}
    (tmp_path / "project").mkdir()
    project = project_with(tmp_path / "project", trust)
    main = push(registry, "shop/web", "private-main", COMMIT)
    sign_with_certificate(cosign, main, keys["ours"], ca.certificate(Path(str(keys["ours"]) + ".pub"),
                                                                    WORKFLOW + "main"), ca.chain)
    result = promote(project, main)
    assert result.version == 1
    (release,) = [json.loads(t) for t in store(project) if '"images"' in t]
    assert release["verified"]["web"]["identity"] == f"{ISSUER} {WORKFLOW}main"
    # A branch named main-x contains the pattern's text: cosign alone (unanchored) would accept it.
    branch = push(registry, "shop/web", "private-main-x", COMMIT)
    sign_with_certificate(cosign, branch, keys["ours"], ca.certificate(Path(str(keys["ours"]) + ".pub"),
                                                                      WORKFLOW + "main-x"), ca.chain)
    before = store(project)
    with pytest.raises(BadInput) as err:
        promote(project, branch)
    assert "signed, but not by a key or identity this environment trusts" in err.value.message
    assert store(project) == before
