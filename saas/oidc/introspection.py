"""``POST {issuer}/introspect`` (RFC 7662), for confidential clients only.

A live token (its session not revoked, a refresh token not rotated out)
answers ``active: true`` with what it grants; anything else ``active: false``
and nothing more.
"""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.errors import ApiError, Reason
from saas.jwt.es256 import InvalidAccessToken
from saas.request_body import read_params, string_param
from saas.tokens.client_auth import authenticate_client
from saas.tokens.issue import json_response


def _access_token(request, app: AppConfig, token: str) -> dict[str, Any] | None:
    try:
        claims = request.access_tokens.verify(app, token, request.now)
    except InvalidAccessToken:
        return None
    if not request.login_sessions.is_active(app.app_id, claims.sid):
        return None
    answer = {"token_type": "Bearer", "exp": claims.exp, "iat": claims.iat}
    if claims.scope:
        answer["scope"] = claims.scope
    return dict(answer, sub=claims.user_id, sid=claims.sid)


def _refresh_token(request, app: AppConfig, token: str) -> dict[str, Any] | None:
    session = request.login_sessions.live_session_of_refresh_token(app.app_id, token)
    if session is None or session.expires_at <= request.now:
        return None
    answer: dict[str, Any] = {"token_type": "refresh_token", "exp": session.expires_at}
    if session.oidc.scopes:
        answer["scope"] = session.oidc.scope
    return dict(answer, sub=session.user_id, sid=session.sid)


@view_config(route_name="oidc.introspect", request_method="POST", require_csrf=False)
def introspect(request):
    app = load_app(request)
    params = read_params(request)
    authenticate_client(request, app, params, confidential_only=True)
    token = string_param(params, "token")
    if not token:
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID, "token is required",
                       headers={"Cache-Control": "no-store"})
    lookups = (_access_token, _refresh_token)
    if string_param(params, "token_type_hint") == "refresh_token":
        lookups = (_refresh_token, _access_token)
    found = next((answer for lookup in lookups if (answer := lookup(request, app, token))),
                 None)
    if found is None:
        body: dict[str, Any] = {"active": False}
    else:
        body = {"active": True, **found, "client_id": app.app_id, "aud": app.app_id,
                "iss": request.access_tokens.issuer(app.app_id)}
    return json_response(request, body, Cache_Control="no-store", Pragma="no-cache")
