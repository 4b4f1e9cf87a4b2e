"""ID tokens (OpenID Connect Core §2, docs/oidc.md): the claims, then the signature.

Signed ES256 with the app's access-token key (its JWKS publishes it), with
``typ: JWT`` so neither kind of token passes for the other. ``exp`` is the
access token's lifetime: an ID token proves a login, it grants nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from saas.apps.cache import AppConfig
from saas.jwt.codec import b64url_encode
from saas.tokens.scopes import standard_claims


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token (ES256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return b64url_encode(digest[:16])


def id_token_claims(app: AppConfig, *, issuer: str, user_id: str, sid: str, now: int,
                    auth_time: int, amr: list[str], scopes: list[str], access_token: str,
                    profile: dict[str, Any] | None, nonce: str | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": user_id,
        "aud": app.app_id,
        "azp": app.app_id,
        "exp": now + app.access_token_ttl,
        "iat": now,
        "auth_time": auth_time,
        "sid": sid,
        "at_hash": at_hash(access_token),
        "amr": amr,
    }
    if nonce:
        claims["nonce"] = nonce
    claims.update(standard_claims(profile, scopes))
    return claims
