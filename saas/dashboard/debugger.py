"""The token debugger page: paste a token, see every check and the service's reason.

Owners and admins only (the role that may reveal secrets: the checks run
with the app's secrets). The page is a POST form with CSRF; the token is
rendered back only to the member who pasted it (``no-store``) and is never
logged, audited or consumed (``saas.diagnostics.debugger``).
"""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from saas.apps.cache import config_of
from saas.dashboard.common import field, no_store
from saas.diagnostics.debugger import KINDS, TENANT, debug_token
from saas.jwt.custom_tokens import MAX_CUSTOM_TOKEN_CHARS
from saas.security import Permission

# A little over the largest token the service reads, so "too large" can be shown.
MAX_PASTE = MAX_CUSTOM_TOKEN_CHARS + 1024
MAX_STATE = 512


def _page(context, **extra: Any) -> dict[str, Any]:
    page = {"app": context.app, "tab": "debugger", "kinds": KINDS, "kind": TENANT,
            "token": "", "state": "", "report": None, "errors": {}}
    page.update(extra)
    return page


@view_config(route_name="dashboard.app.debugger", renderer="dashboard/app_debugger.html",
             request_method="GET", permission=Permission.VIEW)
def debugger_page(context, request) -> dict:
    return _page(context)


@view_config(route_name="dashboard.app.debugger", renderer="dashboard/app_debugger.html",
             request_method="POST", permission=Permission.MANAGE)
def debug(context, request) -> dict:
    no_store(request)
    kind = field(request, "kind", 16)
    token = field(request, "token", MAX_PASTE).strip()
    state = field(request, "state", MAX_STATE).strip()
    if kind not in KINDS:
        request.response.status_int = 400
        return _page(context, errors={"kind": "Choose the kind of token."}, token=token,
                     state=state)
    # An empty token is not a form error: the service's answer is token_missing.
    report = debug_token(request, config_of(context.app), kind, token,
                         state or None if kind == TENANT else None)
    return _page(context, kind=kind, token=token, state=state, report=report)
