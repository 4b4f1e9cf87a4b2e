"""Access tokens: ES256 JWTs signed with the app's current key (DESIGN §6)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
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
        return jwt.encode(claims, self._private_key(key), algorithm="ES256",
                          headers={"kid": key.kid, "typ": "at+jwt"})

    def verify(self, app: AppConfig, token: str, now: float) -> AccessClaims:
        if not token or len(token) > 8192:
            raise InvalidAccessToken("missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
            jwk = next(
                (k for k in app.published_keys(now) if k["kid"] == header.get("kid")), None
            )
            if jwk is None or header.get("alg") != "ES256":
                raise InvalidAccessToken("unknown key")
            claims = jwt.decode(
                token,
                self._public_key(jwk),
                algorithms=["ES256"],
                audience=app.app_id,
                issuer=issuer(self.public_base_url, app.app_id),
                options={"require": ["exp", "iat", "sub", "sid", "ext", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken(exc.__class__.__name__) from exc
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
