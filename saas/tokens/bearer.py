"""Bearer access tokens presented to ``/me``, ``/logout`` and UserInfo (RFC 6750).

Every failure is 401 ``invalid_token`` with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app, unknown_app
from saas.errors import ApiError, Reason
from saas.jwt.codec import Malformed, b64url_decode_lenient, json_object
from saas.jwt.es256 import MAX_ACCESS_TOKEN_CHARS, AccessClaims, InvalidAccessToken
from saas.redis import pipeline
from saas.users.pending import parse_overlay, pending_key


def bearer_error(description: str, reason: Reason = Reason.CLAIMS_INVALID) -> ApiError:
    return ApiError(401, "invalid_token", reason, description,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def presented_token(request, token: str | None = None) -> str:
    """The Bearer header's token, or ``token`` (one sent in the body, RFC 6750 §2.2)."""
    if token is None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    return token


def verified_bearer(request, app: AppConfig, token: str | None = None) -> AccessClaims:
    """The Bearer access token's claims (signature, expiry, audience checked);
    ``token``: one sent in the body instead of the header (RFC 6750 §2.2)."""
    token = presented_token(request, token)
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


def _unverified_ids(token: str) -> tuple[str, str] | None:
    """The token's ``sid`` and ``sub`` as it states them, before any check:
    only ever used to name keys to read, never believed."""
    token = token.strip()
    if not token or len(token) > MAX_ACCESS_TOKEN_CHARS or token.count(".") != 2:
        return None
    try:
        claims = json_object(b64url_decode_lenient(token.split(".")[1]))
    except Malformed:
        return None
    sid, sub = claims.get("sid"), claims.get("sub")
    return (sid, sub) if isinstance(sid, str) and isinstance(sub, str) else None


def _queue_session_and_overlay(request, pipe, app_id: str, sid: str, user_id: str) -> None:
    pipe.hget(request.login_sessions.session_key(app_id, sid), "revoked")
    pipe.hgetall(pending_key(request.redis_keys, app_id, user_id))


def app_claims_and_overlay(request, token: str | None = None,
                           ) -> tuple[AppConfig, AccessClaims, dict]:
    """The URL's app (404), the Bearer token's claims (401 as ``bearer_claims``)
    and the user's login overlay (``/me``, UserInfo).

    For an app this process has served lately, the settings, the session check
    and the overlay are read in one round trip, their keys named by the
    token's claims before they are checked: reads only, and nothing read is
    used unless the signature holds for exactly those claims.
    """
    app_id = request.matchdict["app_id"]
    token = presented_token(request, token)
    peeked = _unverified_ids(token) if request.app_cache.known(app_id) else None
    if peeked is None:
        app = load_app(request)
        claims = verified_bearer(request, app, token)
        pipe = pipeline(request.redis)
        _queue_session_and_overlay(request, pipe, app.app_id, claims.sid, claims.user_id)
        revoked, raw_overlay = pipe.execute()
    else:
        pipe = pipeline(request.redis)
        pipe.get(request.app_cache.key(app_id))
        _queue_session_and_overlay(request, pipe, app_id, *peeked)
        raw_config, revoked, raw_overlay = pipe.execute()
        app = request.app_cache.answer(lambda: request.db, app_id, raw_config)
        if app is None:
            raise unknown_app()
        claims = verified_bearer(request, app, token)
        if (claims.sid, claims.user_id) != peeked:  # the same bytes: cannot happen
            raise bearer_error("the access token is invalid or expired")
    if revoked != b"0":
        raise bearer_error("the session was revoked", Reason.SESSION_REVOKED)
    return app, claims, parse_overlay(raw_overlay)
