"""A software WebAuthn authenticator for tests: ES256, ``none`` attestation.

It builds what a browser hands the page after ``navigator.credentials.create``
and ``.get`` (clientDataJSON, authenticator data, CBOR attestation object, an
ECDSA signature), byte for byte as WebAuthn Level 2 lays them out, so the
server's verification (py_webauthn) runs for real. Chromium's own virtual
authenticator covers the browser path (tests/browser/test_account_factors_journey.py);
this one lets a test forge the answers a browser never would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_UP, _UV, _AT = 0x01, 0x04, 0x40  # user present, user verified, attested credential data


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SoftAuthenticator:
    def __init__(self, rp_id: str, origin: str) -> None:
        self.rp_id, self.origin = rp_id, origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, options_json: str, origin: str | None) -> bytes:
        challenge = json.loads(options_json)["challenge"]
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        return (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                + self.sign_count.to_bytes(4, "big") + attested)

    def create(self, options_json: str, *, origin: str | None = None) -> str:
        """The credential JSON a browser would post after ``credentials.create``."""
        client_data = self._client_data("webauthn.create", options_json, origin)
        attested = (bytes(16) + len(self.credential_id).to_bytes(2, "big")
                    + self.credential_id + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {},
                                   "authData": self._auth_data(_UP | _UV | _AT, attested)})
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation),
                         "transports": ["internal"]},
        })

    def get(self, options_json: str, *, origin: str | None = None,
            count_step: int = 1) -> str:
        """The assertion JSON a browser would post after ``credentials.get``."""
        self.sign_count += count_step
        client_data = self._client_data("webauthn.get", options_json, origin)
        auth_data = self._auth_data(_UP | _UV)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": None},
        })
