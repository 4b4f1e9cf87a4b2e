"""``POST {issuer}/revoke`` (RFC 7009): a refresh or access token ends its session.

Whatever the token (unknown, already revoked, another app's), the answer is
200: a client learns nothing by probing. A confidential client
authenticates; a public one sends its ``client_id`` or nothing.
"""

from __future__ import annotations

from pyramid.response import Response
from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.audit.types import AuditType, Outcome
from saas.errors import ApiError, Reason
from saas.jwt.es256 import InvalidAccessToken
from saas.request_body import read_params, string_param
from saas.tokens.client_auth import authenticate_client
from saas.tokens.issue import audit_token_event


def session_of_token(request, app: AppConfig, token: str, hint: str | None) -> str | None:
    """The session a refresh token or a valid access token of ``app`` belongs to.

    ``hint`` (``token_type_hint``) only decides which kind is tried first.
    """
    def refresh() -> str | None:
        return request.login_sessions.session_of_refresh_token(app.app_id, token)

    def access() -> str | None:
        try:
            return request.access_tokens.verify(app, token, request.now).sid
        except InvalidAccessToken:
            return None

    first, second = (access, refresh) if hint == "access_token" else (refresh, access)
    return first() or second()


@view_config(route_name="oidc.revoke", request_method="POST", require_csrf=False)
def revoke(request) -> Response:
    app = load_app(request)
    params = read_params(request)
    authenticate_client(request, app, params)
    token = string_param(params, "token")
    if not token:
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID, "token is required",
                       headers={"Cache-Control": "no-store"})
    sid = session_of_token(request, app, token, string_param(params, "token_type_hint"))
    if sid is not None:
        session = request.login_sessions.get(app.app_id, sid)  # its user, for the audit
        if session is not None and request.login_sessions.revoke(app.app_id, sid):
            audit_token_event(request, app, AuditType.TOKEN_REVOKED, Outcome.SUCCESS,
                              user_id=session.user_id, external_id=session.external_id,
                              details={"sid": sid})
    return Response(status=200, headerlist=[("Cache-Control", "no-store"),
                                            ("Content-Length", "0")])
