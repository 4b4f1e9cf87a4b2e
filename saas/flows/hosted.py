"""The hosted sign-in form (docs/protocol.md §5.2): ``GET/POST /v1/apps/{app_id}/login``.

GET takes the authorize parameters and renders a page branded by the app.
POST sends the fields to the tenant endpoint over the back-channel; success
is a 303 to the client with a code, a refusal the form again with one generic
message (401). Credentials never travel in a URL.

CSRF: the form carries the login's state, and the POST must come with the
browser-binding cookie set when the form was served — an attacker's page can
neither read the state nor set the cookie, so a cross-site POST is refused.
"""

from __future__ import annotations

from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import view_config

from saas.apps.cache import AppConfig
from saas.apps.lookup import load_app
from saas.audit.types import AuditType
from saas.flows.backchannel_login import BackchannelFailed, ask_tenant
from saas.flows.entry import (
    bind_state,
    check_state_binding,
    consume_state,
    parse_authorize,
    start_attempt,
)
from saas.flows.hosted_form import MAX_FIELD_CHARS, form_fields
from saas.flows.login import LoginFailed, issue_login_code, record_login, record_refusal
from saas.flows.nonces import state_cookie_name
from saas.flows.responses import client_response

FLOW = "hosted"
SIGN_IN_FAILED = "Sign-in failed. Check your details and try again."
UNAVAILABLE = "Signing in is not possible right now. Please try again in a moment."


def form_path(app: AppConfig) -> str:
    return f"/v1/apps/{app.app_id}/login"


def _harden(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # No form-action: browsers apply it to the redirect after the POST, and
    # the client's redirect URI (any origin, custom schemes) must be reachable.
    # img-src: the service's icon.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _render(request, app: AppConfig, state: str, status: int = 200, message: str | None = None,
            values: dict[str, str] | None = None):
    fields = form_fields(app)
    values = {k: v for k, v in (values or {}).items()
              if k in {f["name"] for f in fields if f["type"] != "password"}}
    response = render_to_response("saas:templates/hosted_login.html", {
        "title": (app.hosted_form or {}).get("title") or f"Sign in to {app.name}",
        "fields": fields,
        "values": values,
        # Focus where the user has to type next (the passphrase after a refusal).
        "focus": next((f["name"] for f in fields if not values.get(f["name"])),
                      fields[0]["name"]),
        "state": state,
        "action": form_path(app),
        "message": message,
    }, request=request)
    response.status_int = status
    bind_state(request, response, state, form_path(app))
    return _harden(response)


@view_config(route_name="flows.hosted_login", request_method="GET")
def hosted_form(request):
    app = load_app(request, rate_limited=True)
    auth = parse_authorize(request, app, FLOW)
    if isinstance(auth, Response):
        return auth
    state, _attempt_id = start_attempt(request, app, auth, FLOW)
    return _render(request, app, state)


@view_config(route_name="flows.hosted_login", request_method="POST", require_csrf=False)
def hosted_submit(request):
    app = load_app(request, rate_limited=True)
    state = request.POST.get("state")
    check_state_binding(request, app, state)
    record = consume_state(request, app, state)
    values = {f["name"]: request.POST.get(f["name"], "")[:MAX_FIELD_CHARS]
              for f in form_fields(app)}
    try:
        user = ask_tenant(request, app, state, record["attempt_id"], values)
    except LoginFailed as failure:
        record_refusal(request, app, failure, record)
        return _again(request, app, record, failure, values)
    code = issue_login_code(request, app, user, record)
    record_login(request, app, user, AuditType.LOGIN_SUCCEEDED,
                 {"attempt_id": record["attempt_id"], "flow": FLOW})
    # A 303: the redirect after a POST (with form_post, the page that posts the code on).
    response = client_response(request, app.app_id, record, status=303, code=code)
    response.delete_cookie(state_cookie_name(state), path=form_path(app))
    if response.status_int == 303:
        return _harden(response)
    return response


def _again(request, app: AppConfig, record: dict, failure: LoginFailed, values: dict):
    """The form once more, under a fresh state (the old one is spent)."""
    state = request.nonces.issue_state(app.app_id, dict(record))
    if isinstance(failure, BackchannelFailed) and failure.status != 401:
        return _render(request, app, state, failure.status, UNAVAILABLE, values)
    return _render(request, app, state, 401, SIGN_IN_FAILED, values)
