"""Per-app ES256 signing keys: generation, encryption at rest, the public JWK."""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from saas.apps.models import SigningKey
from saas.crypto import SecretBox
from saas.jwt.codec import b64url_encode


def _thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), base64url without padding."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return b64url_encode(digest)


def new_signing_key(box: SecretBox) -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    kid = _thumbprint(jwk)
    jwk.update({"kid": kid, "use": "sig", "alg": "ES256"})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return SigningKey(kid=kid, private_key_ciphertext=box.encrypt(pem), public_jwk=jwk)
