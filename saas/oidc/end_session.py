"""``GET``/``POST {issuer}/end-session`` (OpenID Connect RP-Initiated Logout 1.0).

The ``id_token_hint`` names the session to end: its signature, issuer and
audience are checked, its expiry is not (an app may sign out long after the
ID token expired). A bad hint ends nothing. The user goes back to
``post_logout_redirect_uri`` (with ``state``) only with a good hint and when
the URI is exactly one of the app's post-logout redirect URIs; otherwise a
signed-out page is shown and nothing redirects — the list is what keeps this
from being an open redirect.
"""

from __future__ import annotations

from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.audit.types import AuditType, Outcome
from saas.errors import ApiError, Reason
from saas.flows.redirect_uris import with_query
from saas.flows.responses import found
from saas.jwt.es256 import InvalidAccessToken
from saas.request_body import read_params
from saas.request_text import query_params
from saas.tokens.issue import audit_token_event


def _params(request) -> dict:
    if request.method == "POST":
        return read_params(request)
    params, all_text = query_params(request)
    if not all_text:
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                       "the query string is not UTF-8 text")
    return dict(params)


def _end(request, app: AppConfig, hint: str) -> bool:
    try:
        claims = request.access_tokens.verify_id_token_hint(app, hint, request.now)
    except InvalidAccessToken as exc:
        raise ApiError(400, "invalid_request", exc.reason,
                       "id_token_hint is not an ID token of this app") from exc
    if request.login_sessions.revoke(app.app_id, claims.sid):
        audit_token_event(request, app, AuditType.LOGOUT, Outcome.SUCCESS,
                          user_id=claims.user_id, details={"sid": claims.sid,
                                                           "via": "end_session"})
    return True


@view_config(route_name="oidc.end_session", request_method=("GET", "POST"), require_csrf=False)
def end_session(request) -> Response:
    app = load_app(request)
    params = _params(request)
    text = {k: v for k, v in params.items() if isinstance(v, str)}
    client_id = text.get("client_id")
    if client_id is not None and client_id != app.app_id:
        raise ApiError(400, "invalid_request", Reason.CLIENT_ID_MISMATCH,
                       "client_id is not this app's id")
    hinted = bool(text.get("id_token_hint")) and _end(request, app, text["id_token_hint"])
    target = text.get("post_logout_redirect_uri")
    # Back to the app only for a request the app itself made (its ID token).
    if hinted and target and target in app.post_logout_redirect_uris:
        return found(with_query(target, {"state": text.get("state")}))
    response = render_to_response("saas:templates/signed_out.html", {
        "app_name": app.name, "unlisted": bool(target)}, request=request)
    response.headers["Cache-Control"] = "no-store"
    return response
