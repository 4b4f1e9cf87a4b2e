"""Bearer access tokens presented to ``/me``, ``/logout`` and UserInfo (RFC 6750).

Every failure is 401 ``invalid_token`` with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from saas.apps.cache import AppConfig
from saas.errors import ApiError, Reason
from saas.jwt.es256 import AccessClaims, InvalidAccessToken
from saas.redis import pipeline
from saas.users.pending import parse_overlay, pending_key


def bearer_error(description: str, reason: Reason = Reason.CLAIMS_INVALID) -> ApiError:
    return ApiError(401, "invalid_token", reason, description,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def verified_bearer(request, app: AppConfig, token: str | None = None) -> AccessClaims:
    """The Bearer access token's claims (signature, expiry, audience checked);
    ``token``: one sent in the body instead of the header (RFC 6750 §2.2)."""
    if token is None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    if not token.strip():
        raise bearer_error("a Bearer access token is required")
    try:
        return request.access_tokens.verify(app, token.strip(), request.now)
    except InvalidAccessToken as exc:
        raise bearer_error("the access token is invalid or expired") from exc


def bearer_claims(request, app: AppConfig) -> AccessClaims:
    """The access token's claims, its session live."""
    claims = verified_bearer(request, app)
    if not request.login_sessions.is_active(app.app_id, claims.sid):
        raise bearer_error("the session was revoked", Reason.SESSION_REVOKED)
    return claims


def bearer_claims_and_overlay(request, app: AppConfig,
                              token: str | None = None) -> tuple[AccessClaims, dict]:
    """As ``bearer_claims``, with the user's login overlay read in the same
    round trip as the session check (``/me``, UserInfo)."""
    claims = verified_bearer(request, app, token)
    pipe = pipeline(request.redis)
    pipe.hget(request.login_sessions.session_key(app.app_id, claims.sid), "revoked")
    pipe.hgetall(pending_key(request.redis_keys, app.app_id, claims.user_id))
    revoked, raw_overlay = pipe.execute()
    if revoked != b"0":
        raise bearer_error("the session was revoked", Reason.SESSION_REVOKED)
    return claims, parse_overlay(raw_overlay)
