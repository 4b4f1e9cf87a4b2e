"""The token endpoint, JWKS, ``/me`` and ``/logout`` (docs/protocol.md §6)."""

from __future__ import annotations

import logging

from pyramid.httpexceptions import HTTPNoContent
from pyramid.response import Response
from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.audit.types import AuditType, Outcome
from saas.clock import from_ms
from saas.errors import ApiError, Reason
from saas.pkce import verifier_matches
from saas.request_body import read_params, string_param
from saas.tokens.bearer import app_claims_and_overlay, bearer_claims, bearer_error
from saas.tokens.client_auth import authenticate_client
from saas.tokens.issue import audit_token_event, json_response, start_session, token_response
from saas.tokens.login_sessions import NO_OIDC, OidcLogin
from saas.tokens.user_profile import completed_user

log = logging.getLogger(__name__)


def _grant_error(reason: Reason, description: str, error: str = "invalid_grant") -> ApiError:
    return ApiError(400, error, reason, description, headers={"Cache-Control": "no-store"})


@view_config(route_name="flows.token", request_method="POST", renderer="json",
             require_csrf=False)
def token(request):
    app = load_app(request)
    params = read_params(request)
    authenticate_client(request, app, params)
    grant_type = string_param(params, "grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(request, app, params)
    if grant_type == "refresh_token":
        return _refresh(request, app, params)
    if not grant_type:
        raise _grant_error(Reason.CLAIMS_INVALID, "grant_type is required", "invalid_request")
    raise _grant_error(Reason.CLAIMS_INVALID, "grant_type must be authorization_code or "
                       "refresh_token", "unsupported_grant_type")


def _exchange_code(request, app: AppConfig, params: dict) -> Response:
    code = string_param(params, "code")
    verifier = string_param(params, "code_verifier")
    redirect_uri = string_param(params, "redirect_uri")
    if not code:
        raise _grant_error(Reason.CODE_INVALID, "code is required", "invalid_request")
    if not verifier and not (app.confidential and not app.pkce_required):
        raise _grant_error(Reason.PKCE_INVALID, "code_verifier is required", "invalid_request")
    lookup = request.nonces.consume_code(app.app_id, code)
    if lookup.reused is not None:
        sid = lookup.reused.get("sid")
        if sid and request.login_sessions.revoke(app.app_id, sid):
            audit_token_event(request, app, AuditType.TOKEN_CODE_REUSE_DETECTED, Outcome.FAILURE,
                              reason=str(Reason.CODE_INVALID),
                              user_id=lookup.reused.get("user_id"), details={"sid": sid})
        raise _grant_error(Reason.CODE_INVALID, "the code was used already")
    payload = lookup.payload
    if payload is None:
        raise _grant_error(Reason.CODE_INVALID, "the code is unknown or expired")
    if redirect_uri != payload["redirect_uri"]:
        raise _grant_error(Reason.CODE_INVALID, "redirect_uri differs from the authorize request")
    challenge = payload["code_challenge"]
    # A code issued with a challenge always needs its verifier; one without
    # (a confidential client, PKCE off) must not come with one.
    if (challenge is None) != (verifier is None) or (
            challenge is not None and not verifier_matches(verifier, challenge)):
        raise _grant_error(Reason.PKCE_INVALID, "code_verifier does not match")
    return start_session(request, app, sid=payload["sid"], user_id=payload["user_id"],
                         external_id=payload["external_id"],
                         details={"attempt_id": payload.get("attempt_id")},
                         oidc=_oidc_login(payload), nonce=payload.get("nonce"))


def _oidc_login(payload: dict) -> OidcLogin:
    """What the code's login granted (codes issued before OpenID Connect grant nothing)."""
    scopes = tuple(payload.get("scopes") or ())
    if not scopes:
        return NO_OIDC
    return OidcLogin(scopes, int(payload.get("auth_time") or 0), tuple(payload.get("amr") or ()))


def _refresh(request, app: AppConfig, params: dict) -> Response:
    presented = string_param(params, "refresh_token")
    if not presented:
        raise _grant_error(Reason.REFRESH_INVALID, "refresh_token is required", "invalid_request")
    rotation = request.login_sessions.rotate(app.app_id, presented)
    if rotation.outcome == "reused":
        reused = rotation.session
        audit_token_event(request, app, AuditType.TOKEN_REFRESH_REUSE_DETECTED, Outcome.FAILURE,
                          reason=str(Reason.REFRESH_REUSED), user_id=reused.user_id or None,
                          external_id=reused.external_id or None, details={"sid": reused.sid})
        raise _grant_error(Reason.REFRESH_REUSED, "the refresh token was used already; "
                           "the session is revoked")
    if rotation.outcome == "revoked":
        raise _grant_error(Reason.SESSION_REVOKED, "the session was revoked")
    if rotation.outcome == "invalid":
        raise _grant_error(Reason.REFRESH_INVALID, "the refresh token is unknown or expired")
    session = rotation.session
    audit_token_event(request, app, AuditType.TOKEN_REFRESHED, Outcome.SUCCESS,
                      user_id=session.user_id, external_id=session.external_id,
                      details={"sid": session.sid, "retry": rotation.outcome == "retry"})
    return token_response(
        request, app, sid=session.sid, user_id=session.user_id,
        external_id=session.external_id, refresh_token=rotation.refresh_token,
        refresh_expires_at=session.expires_at, oidc=session.oidc,
    )


@view_config(route_name="flows.jwks", request_method="GET", renderer="json")
def jwks(request):
    app = load_app(request)
    request.response.headers["Cache-Control"] = "public, max-age=300"
    # Public keys, for any page that checks our tokens (OpenID Connect libraries do).
    request.response.headers["Access-Control-Allow-Origin"] = "*"
    return {"keys": app.published_keys(request.now)}


def _iso_ms(ms: int | None) -> str | None:
    return from_ms(ms).isoformat() if ms is not None else None


@view_config(route_name="flows.me", request_method="GET", renderer="json")
def me(request):
    app, claims, overlay = app_claims_and_overlay(request)
    user = completed_user(request, app.app_id, claims.user_id, overlay)
    return json_response(request, {
        "id": claims.user_id,
        "app_id": app.app_id,
        "external_id": claims.external_id,
        "custom": user["custom"],
        "profile": user["profile"],
        "created_at": _iso_ms(user.get("first_login")),
        "last_login_at": _iso_ms(user.get("last_login")),
    }, Cache_Control="no-store")


@view_config(route_name="flows.logout", request_method="POST", require_csrf=False)
def logout(request):
    app = load_app(request)
    sid = None
    if request.headers.get("Authorization"):
        sid = bearer_claims(request, app).sid
    if request.content_length:
        presented = string_param(read_params(request), "refresh_token")
        if presented:
            sid = request.login_sessions.session_of_refresh_token(app.app_id, presented) or sid
    if sid is None:
        raise bearer_error("a Bearer access token or a refresh_token is required")
    session = request.login_sessions.get(app.app_id, sid)  # its user, for the audit
    if request.login_sessions.revoke(app.app_id, sid):
        audit_token_event(request, app, AuditType.LOGOUT, Outcome.SUCCESS,
                          user_id=session.user_id if session else None,
                          external_id=session.external_id if session else None,
                          details={"sid": sid})
    response = HTTPNoContent()
    response.headers["Cache-Control"] = "no-store"
    return response
