"""``GET``/``POST {issuer}/userinfo`` (OpenID Connect Core §5.3).

The user's claims as the access token's scopes release them, read from the
same merged profile as ``/me`` and the ID token. The token is the Bearer
header's, or (POST) the body's ``access_token`` (RFC 6750 §2.2).
"""

from __future__ import annotations

from pyramid.view import view_config

from saas.errors import ApiError, Reason
from saas.request_body import read_params, string_param
from saas.tokens.bearer import app_claims_and_overlay
from saas.tokens.issue import json_response
from saas.tokens.scopes import OPENID, standard_claims
from saas.tokens.user_profile import completed_user


def _body_token(request) -> str | None:
    if request.method != "POST" or "Authorization" in request.headers \
            or not request.content_length:
        return None
    return string_param(read_params(request, allow_form=True), "access_token")


@view_config(route_name="oidc.userinfo", request_method=("GET", "POST"), require_csrf=False)
def userinfo(request):
    app, claims, overlay = app_claims_and_overlay(request, _body_token(request))
    scopes = (claims.scope or "").split()
    if OPENID not in scopes:
        raise ApiError(403, "insufficient_scope", Reason.INSUFFICIENT_SCOPE,
                       "the access token was not issued with the openid scope", headers={
                           "WWW-Authenticate": 'Bearer error="insufficient_scope", '
                                               'scope="openid"'})
    user = completed_user(request, app.app_id, claims.user_id, overlay)
    body = {"sub": claims.user_id, **standard_claims(user["profile"], scopes)}
    if app.oidc_custom_claim:
        body["custom"] = user["custom"]
    return json_response(request, body, Cache_Control="no-store", Pragma="no-cache")
