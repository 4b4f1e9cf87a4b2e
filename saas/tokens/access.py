"""Access tokens: the service that signs and verifies them for an app (docs/protocol.md §6).

The token format and its checks are ``saas.jwt.es256``; this service keeps
each app's keys loaded in memory, keyed by ``kid``.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import ECAlgorithm

from saas.apps.cache import AppConfig, SigningKeyConfig
from saas.crypto import SecretBox
from saas.jwt.es256 import (
    ID_TOKEN_TYP,
    AccessClaims,
    IdTokenHint,
    sign_access_token,
    verify_access_token,
    verify_id_token_hint,
)


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

    def issuer(self, app_id: str) -> str:
        return issuer(self.public_base_url, app_id)

    def issue(self, app: AppConfig, *, user_id: str, external_id: str, sid: str, now: int,
              scope: str | None = None) -> str:
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
        if scope:
            claims["scope"] = scope
        return sign_access_token(self._private_key(key), key.kid, claims)

    def sign_id_token(self, app: AppConfig, claims: dict[str, Any]) -> str:
        """An ID token (``typ: JWT``), signed with the key that signs access tokens."""
        key = app.active_signing_key()
        return sign_access_token(self._private_key(key), key.kid, claims, ID_TOKEN_TYP)

    def verify_id_token_hint(self, app: AppConfig, token: str, now: float) -> IdTokenHint:
        """One of ``app``'s ID tokens, expired or not (end-session), or InvalidAccessToken."""
        return verify_id_token_hint(token, keys=app.published_keys(now), load_key=self._public_key,
                                    audience=app.app_id, issuer=issuer(self.public_base_url,
                                                                       app.app_id))

    def verify(self, app: AppConfig, token: str, now: float) -> AccessClaims:
        """The claims of a token this service issued for ``app``, or InvalidAccessToken.

        ES256 only, with a key the app publishes at ``now`` (the service's
        clock, ``request.now``); ``exp``, ``iat``, the audience and the issuer
        checked against it.
        """
        return verify_access_token(
            token, keys=app.published_keys(now), load_key=self._public_key, now=now,
            audience=app.app_id, issuer=issuer(self.public_base_url, app.app_id))


def includeme(config) -> None:
    registry = config.registry
    registry["saas.access_tokens"] = AccessTokens(
        registry["saas.secret_box"], registry.settings["saas.public_base_url"]
    )
    config.add_request_method(
        lambda r: r.registry["saas.access_tokens"], "access_tokens", reify=True
    )
