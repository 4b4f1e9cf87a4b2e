"""Verifying Bridgekeeper access tokens in an app's own back end.

    from bridgekeeper_verifier import AccessTokenVerifier

    verifier = AccessTokenVerifier("https://auth.example.com", "k3x9a0bz")
    claims = verifier.verify(request.headers["Authorization"].removeprefix("Bearer "))
    user_id, external_id = claims["sub"], claims["ext"]

The app's public keys come from its JWKS (``/v1/apps/{app_id}/.well-known/
jwks.json``), cached for ``cache_seconds``; a token signed with a key the cache
does not know yet (after a rotation) makes the client fetch the set again
(at most once per ``refresh_cooldown`` seconds). Only ES256 is accepted, and
the issuer, audience and expiry are always checked.

A package of its own, not part of ``saas``: it runs in the app's back end, next
to none of the server's code, and needs only PyJWT.
"""

from __future__ import annotations

from typing import Any

import jwt

ALGORITHMS = ["ES256"]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "ext", "sid", "iat", "exp", "jti"]


class InvalidToken(Exception):
    """The token is not a valid, current access token of this app."""


class AccessTokenVerifier:
    def __init__(self, base_url: str, app_id: str, *, cache_seconds: float = 300,
                 refresh_cooldown: float = 30, leeway: float = 30, timeout: float = 5) -> None:
        self.issuer = f"{base_url.rstrip('/')}/v1/apps/{app_id}"
        self.app_id = app_id
        self.leeway = leeway
        self._keys = jwt.PyJWKClient(
            f"{self.issuer}/.well-known/jwks.json", cache_jwk_set=True,
            lifespan=cache_seconds, cooldown_duration=refresh_cooldown, timeout=timeout,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims (``sub`` = our user id, ``ext`` = your user id, ``sid``)."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            return jwt.decode(
                token, key.key, algorithms=ALGORITHMS, audience=self.app_id,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
