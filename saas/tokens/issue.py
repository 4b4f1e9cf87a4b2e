"""Issuing a login session: its refresh token, an access token, the audit.

The token endpoint issues one on a code exchange; the custom-token and in-app
flows issue one directly. The flows import this module, never the token
endpoint's views, so flows → tokens runs one way.
"""

from __future__ import annotations

from pyramid.response import Response

from saas.apps.cache import AppConfig
from saas.audit.types import AuditType, Outcome
from saas.fast_json import dumps
from saas.login_events import append_event, audit_from_request
from saas.redis import pipeline
from saas.tokens.id_tokens import id_token_claims
from saas.tokens.login_sessions import NO_OIDC, OidcLogin
from saas.tokens.scopes import OPENID, PROFILE_SCOPES
from saas.tokens.user_profile import completed_user
from saas.users.pending import parse_overlay, pending_key


def audit_token_event(request, app: AppConfig, type_: AuditType, outcome: Outcome, pipe=None,
                      **fields) -> None:
    """One audit event of the token endpoint, on ``pipe`` when the caller batches."""
    append_event(pipe or request.redis, request.event_streams, [audit_from_request(
        request, type_, outcome, app_id=app.app_id, tenant_id=app.tenant_id, **fields)])


def json_response(request, body: dict, **headers: str) -> Response:
    """The hot path's JSON answers, serialised with orjson (Pyramid's json
    renderer was ~3 % of a token request); plain json for what orjson refuses
    (a tenant's integer beyond 64 bits in ``custom``)."""
    response = request.response
    response.body = dumps(body)
    response.content_type = "application/json"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def wants_profile(oidc: OidcLogin) -> bool:
    """Whether the session's ID tokens carry claims of the user's profile."""
    return OPENID in oidc.scopes and any(scope in PROFILE_SCOPES for scope in oidc.scopes)


def token_response(request, app: AppConfig, *, sid: str, user_id: str, external_id: str,
                   refresh_token: str, refresh_expires_at: int, oidc: OidcLogin = NO_OIDC,
                   nonce: str | None = None, user: dict | None = None) -> Response:
    """The token response (docs/protocol.md §6); with ``openid`` granted, an ID
    token too (docs/oidc.md). ``user``: the user's overlay, when the ID token
    needs profile claims and the caller has read it already."""
    now = int(request.now)
    access_token = request.access_tokens.issue(
        app, user_id=user_id, external_id=external_id, sid=sid, now=now, scope=oidc.scope
    )
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": app.access_token_ttl,
        "refresh_token": refresh_token,
        "refresh_expires_in": max(refresh_expires_at - now, 0),
        "user": {"id": user_id, "external_id": external_id},
    }
    if oidc.scopes:
        body["scope"] = oidc.scope
    if OPENID in oidc.scopes:
        profile = None
        if wants_profile(oidc):
            if user is None:
                user = request.pending_merges.read(app.app_id, user_id)
            profile = completed_user(request, app.app_id, user_id, user)["profile"]
        body["id_token"] = request.access_tokens.sign_id_token(app, id_token_claims(
            app, issuer=request.access_tokens.issuer(app.app_id), user_id=user_id, sid=sid,
            now=now, auth_time=oidc.auth_time or now, amr=list(oidc.amr) or ["ext"],
            scopes=list(oidc.scopes), access_token=access_token, profile=profile, nonce=nonce))
    return json_response(request, body, Cache_Control="no-store", Pragma="no-cache")


def start_session(request, app: AppConfig, *, sid: str, user_id: str, external_id: str,
                  details: dict, pipe=None, oidc: OidcLogin = NO_OIDC,
                  nonce: str | None = None) -> Response:
    """A new login session: its first refresh token, an access token, the audit.

    One round trip: the session and its audit event go out on one pipeline,
    ``pipe`` when the caller has queued its own writes there already (and the
    user's overlay, when the ID token will carry profile claims).
    """
    pipe = pipe if pipe is not None else pipeline(request.redis)
    refresh_token = request.login_sessions.create(
        app.app_id, sid, user_id, external_id, app.refresh_token_ttl, client=pipe, oidc=oidc
    )
    audit_token_event(request, app, AuditType.TOKEN_ISSUED, Outcome.SUCCESS, pipe=pipe,
                      user_id=user_id, external_id=external_id, details={"sid": sid, **details})
    profile = wants_profile(oidc)
    if profile:
        pipe.hgetall(pending_key(request.redis_keys, app.app_id, user_id))
    answers = pipe.execute()
    return token_response(
        request, app, sid=sid, user_id=user_id, external_id=external_id,
        refresh_token=refresh_token, refresh_expires_at=int(request.now) + app.refresh_token_ttl,
        oidc=oidc, nonce=nonce, user=parse_overlay(answers[-1]) if profile else None,
    )
