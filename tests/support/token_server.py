"""A registry token server on loopback, as Azure Container Registry and others run one beside the registry.

It answers OAuth2 refresh-token grants (POST, `grant_type=refresh_token`) and, with a username and
password, docker's GET with basic auth; tokens are JWTs signed with a throwaway RSA key whose
self-signed certificate the CNCF distribution registry is given as its `rootcertbundle`.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.loopback import Loopback, QuietHandler

SERVICE = "dockyard-test-registry"
ISSUER = "dockyard-test-token-server"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Grants every scope asked for to a holder of `refresh_token` (or of `user`/`password`)."""

    directory: Path
    refresh_token: str
    user: str | None = None
    password: str | None = None
    requests: list[dict] = field(default_factory=list)  # {"method", "grant_type", "scope", "client_id"}

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        self.certificate = self.directory / "token-root.pem"
        self.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                server.requests.append({"method": "POST", "grant_type": form.get("grant_type"),
                                        "scope": form.get("scope", ""), "client_id": form.get("client_id")})
                if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == server.refresh_token \
                        and form.get("service") == SERVICE:
                    return self._grant(form.get("scope", "").split())
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]})

            def do_GET(self) -> None:  # noqa: N802
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
                server.requests.append({"method": "GET", "grant_type": None, "scope": query.get("scope", ""),
                                        "client_id": query.get("client_id")})
                basic = self.headers.get("Authorization", "")
                expected = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                if server.user and basic == f"Basic {expected}":
                    return self._grant([query.get("scope", "")])
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})

            def _grant(self, scopes: list[str]) -> None:
                self.send_json(200, {"access_token": server.token(scopes), "expires_in": 300,
                                     "refresh_token": server.refresh_token})

        self._loopback = Loopback(Handler)
        self.realm = f"{self._loopback.base}/oauth2/token"

    def token(self, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self._x5c]}
        claims = {"iss": ISSUER, "sub": "dockyard-test", "aud": SERVICE, "iat": now, "nbf": now - 60,
                  "exp": now + 300, "jti": f"t{now}{len(self.requests)}", "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def registry_auth(self) -> str:
        """The `auth:` section of the registry's config.yml that sends clients here."""
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
                f"    rootcertbundle: {self.certificate}\n")

    def stop(self) -> None:
        self._loopback.stop()
