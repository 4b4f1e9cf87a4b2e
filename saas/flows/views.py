"""Redirect custom auth (docs/protocol.md §4): ``authorize`` and ``callback``."""

from __future__ import annotations

from pyramid.response import Response
from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.errors import ApiError, Reason
from saas.flows.entry import (
    MAX_TOKEN_CHARS,
    bind_state,
    callback_path,
    check_state_binding,
    consume_state,
    parse_authorize,
    start_attempt,
    tenant_request,
)
from saas.flows.login import LoginFailed, complete_login, record_failure, record_refusal
from saas.flows.nonces import state_cookie_name
from saas.flows.redirect_uris import with_query
from saas.flows.responses import client_response, found
from saas.request_text import query_params


@view_config(route_name="flows.authorize", request_method="GET")
def authorize(request):
    app = load_app(request, rate_limited=True)
    auth = parse_authorize(request, app, "redirect")
    if isinstance(auth, Response):
        return auth
    state, attempt_id = start_attempt(request, app, auth, "redirect")
    location = with_query(app.custom_auth_endpoint,
                          tenant_request(request, app, state, attempt_id, auth.data))
    response = found(location)
    bind_state(request, response, state, callback_path(app.app_id))
    return response


@view_config(route_name="flows.callback", request_method="GET")
def callback(request):
    app = load_app(request)
    params, all_text = query_params(request)
    if not all_text:  # before the state is touched: it stays usable
        record_failure(request, app, str(Reason.CLAIMS_INVALID), None)
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                       "the query string is not UTF-8 text")
    if len(params.get("token", "")) > MAX_TOKEN_CHARS:
        record_failure(request, app, str(Reason.PAYLOAD_TOO_LARGE), None)
        raise ApiError(413, "invalid_request", Reason.PAYLOAD_TOO_LARGE,
                       "the token is larger than 6 KiB")
    state = params.get("state")
    check_state_binding(request, app, state)
    record = consume_state(request, app, state)

    try:
        response = _finish(request, app, state, record, params)
    except LoginFailed as failure:
        record_refusal(request, app, failure, record)
        response = client_response(
            request, app.app_id, record, error=failure.error,
            error_description=failure.description, reason=failure.reason)
    response.delete_cookie(state_cookie_name(state), path=callback_path(app.app_id))
    return response


def _finish(request, app: AppConfig, state: str, record: dict, params) -> Response:
    tenant_error = params.get("error")
    if tenant_error:
        if tenant_error == "access_denied":
            raise LoginFailed("access_denied", Reason.TENANT_DENIED,
                              _tenant_description(params.get("error_description")))
        raise LoginFailed("server_error", Reason.TENANT_ERROR, "the login endpoint failed")
    token = params.get("token", "")
    if not token.strip():
        raise LoginFailed("invalid_request", Reason.TOKEN_MISSING, "the tenant sent no token")
    result = complete_login(request, app, state, record, token)
    return client_response(request, app.app_id, record, code=result.code)


def _tenant_description(text: str | None) -> str:
    """The tenant's own words for a refusal, trimmed to printable text."""
    cleaned = "".join(ch for ch in (text or "") if ch.isprintable())[:200]
    return cleaned or "the login was refused"
