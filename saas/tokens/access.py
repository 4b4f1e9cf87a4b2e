"""Access tokens: ES256 JWTs signed with the app's current key (docs/protocol.md §6).

Encoded and checked here with ``cryptography`` directly: one fixed header
shape, one algorithm, the claims this service writes. PyJWT's generic
machinery (header and option handling, claim dispatch) cost about as much
CPU as the ECDSA operation itself on every ``/me`` and token response.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import ECAlgorithm

from saas.apps.cache import AppConfig, SigningKeyConfig
from saas.crypto import SecretBox


class InvalidAccessToken(Exception):
    """Any problem with a presented access token; callers answer 401."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    external_id: str
    sid: str
    exp: int


def issuer(public_base_url: str, app_id: str) -> str:
    return f"{public_base_url}/v1/apps/{app_id}"


_ECDSA = ec.ECDSA(hashes.SHA256())
_REQUIRED = ("exp", "iat", "sub", "sid", "ext", "aud", "iss")


def _b64encode(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidAccessToken("malformed") from exc


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidAccessToken("malformed") from exc
    if not isinstance(value, dict):
        raise InvalidAccessToken("malformed")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class AccessTokens:
    """Signs and verifies; keeps decrypted keys in memory, keyed by ``kid``."""

    def __init__(self, box: SecretBox, public_base_url: str) -> None:
        self.box = box
        self.public_base_url = public_base_url
        self._private: dict[str, Any] = {}
        self._public: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _private_key(self, key: SigningKeyConfig):
        loaded = self._private.get(key.kid)
        if loaded is None:
            pem = self.box.decrypt(key.private_ciphertext).encode("ascii")
            loaded = load_pem_private_key(pem, password=None)
            with self._lock:
                self._private[key.kid] = loaded
        return loaded

    def _public_key(self, jwk: dict[str, Any]):
        loaded = self._public.get(jwk["kid"])
        if loaded is None:
            loaded = ECAlgorithm.from_jwk(jwk)
            with self._lock:
                self._public[jwk["kid"]] = loaded
        return loaded

    def issue(self, app: AppConfig, *, user_id: str, external_id: str, sid: str, now: int) -> str:
        key = app.active_signing_key()
        claims = {
            "iss": issuer(self.public_base_url, app.app_id),
            "aud": app.app_id,
            "sub": user_id,
            "ext": external_id,
            "sid": sid,
            "iat": now,
            "exp": now + app.access_token_ttl,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
        signing_input = b".".join(
            _b64encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
            for part in (header, claims))
        r, s = decode_dss_signature(self._private_key(key).sign(signing_input, _ECDSA))
        signature = _b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return (signing_input + b"." + signature).decode("ascii")

    def verify(self, app: AppConfig, token: str, now: float) -> AccessClaims:
        """The claims of a token this service issued for ``app``, or InvalidAccessToken.

        ES256 only, with a key the app publishes; ``exp``, ``iat`` and the
        audience and issuer checked as PyJWT did (against the system clock).
        """
        if not token or len(token) > 8192:
            raise InvalidAccessToken("missing or oversized token")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidAccessToken("malformed")
        header = _json_object(_b64decode(parts[0]))
        kid = header.get("kid")
        jwk = next((k for k in app.published_keys(now) if k["kid"] == kid), None)
        if jwk is None or header.get("alg") != "ES256":
            raise InvalidAccessToken("unknown key")
        signature = _b64decode(parts[2])
        if len(signature) != 64:
            raise InvalidAccessToken("bad signature")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        try:
            self._public_key(jwk).verify(der, (parts[0] + "." + parts[1]).encode("ascii"),
                                         _ECDSA)
        except (InvalidSignature, UnicodeEncodeError) as exc:
            raise InvalidAccessToken("bad signature") from exc
        claims = _json_object(_b64decode(parts[1]))
        if any(name not in claims for name in _REQUIRED):
            raise InvalidAccessToken("missing claim")
        clock = time.time()
        if not (_is_number(claims["exp"]) and _is_number(claims["iat"])):
            raise InvalidAccessToken("claim types")
        if claims["exp"] <= clock:
            raise InvalidAccessToken("expired")
        if claims["iat"] > clock:
            raise InvalidAccessToken("not yet valid")
        audience = claims["aud"]
        if not (audience == app.app_id
                or (isinstance(audience, list) and app.app_id in audience)):
            raise InvalidAccessToken("audience")
        if claims["iss"] != issuer(self.public_base_url, app.app_id):
            raise InvalidAccessToken("issuer")
        if not all(isinstance(claims[c], str) for c in ("sub", "sid", "ext")):
            raise InvalidAccessToken("claim types")
        return AccessClaims(claims["sub"], claims["ext"], claims["sid"], int(claims["exp"]))


def includeme(config) -> None:
    registry = config.registry
    registry["saas.access_tokens"] = AccessTokens(
        registry["saas.secret_box"], registry.settings["saas.public_base_url"]
    )
    config.add_request_method(
        lambda r: r.registry["saas.access_tokens"], "access_tokens", reify=True
    )
