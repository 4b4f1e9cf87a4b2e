"""The test login page: call the app's endpoint with sample data, see each step.

Owners and admins only (the call is signed with the app's custom-auth
secret). One audit row ``diagnostics.test_login`` records that a member ran
it, with the outcome and reason — never the sample data, the token or a
secret. No session, code or end user is created (``saas.diagnostics.endpoint_call``).
"""

from __future__ import annotations

import json
from typing import Any

from pyramid.view import view_config

from saas.apps.cache import config_of
from saas.audit.types import AuditType, Outcome
from saas.dashboard.common import audit, field, no_store
from saas.diagnostics.endpoint_call import pretty, run_test_login
from saas.flows.entry import MAX_DATA_BYTES
from saas.flows.hosted_form import MAX_FIELD_CHARS, form_fields
from saas.request_text import is_text
from saas.security import Permission


def _page(context, **extra: Any) -> dict[str, Any]:
    page = {"app": context.app, "tab": "test_login", "fields": form_fields(context.app),
            "values": {}, "data_json": "", "result": None, "errors": {},
            "pretty": pretty}
    page.update(extra)
    return page


def _sample(request, fields: list[dict[str, str]]) -> tuple[dict, set[str], dict, str | None]:
    """The data to send, the names to mask, the values to show again, or an error."""
    values = {f["name"]: field(request, "field-" + f["name"], MAX_FIELD_CHARS) for f in fields}
    hidden = {f["name"] for f in fields if f["type"] == "password"}
    shown = {k: v for k, v in values.items() if k not in hidden}
    raw = field(request, "data_json", MAX_DATA_BYTES + 1).strip()
    if not raw:
        return values, hidden, shown, None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not is_text(data) \
            or len(raw.encode("utf-8")) > MAX_DATA_BYTES:
        return {}, set(), shown, "Enter a JSON object of at most 4 KiB, or leave it empty."
    return data, set(), shown, None


@view_config(route_name="dashboard.app.test_login", renderer="dashboard/app_test_login.html",
             request_method="GET", permission=Permission.VIEW)
def test_login_page(context, request) -> dict:
    return _page(context)


@view_config(route_name="dashboard.app.test_login", renderer="dashboard/app_test_login.html",
             request_method="POST", permission=Permission.MANAGE)
def run(context, request) -> dict:
    no_store(request)
    fields = form_fields(context.app)
    data, hidden, shown, error = _sample(request, fields)
    data_json = field(request, "data_json", MAX_DATA_BYTES + 1)
    if error:
        request.response.status_int = 400
        return _page(context, values=shown, data_json=data_json, errors={"data_json": error})
    result = run_test_login(request, config_of(context.app), data, hidden)
    audit(request, context, AuditType.DIAGNOSTICS_TEST_LOGIN,
          outcome=Outcome.SUCCESS if result.succeeded else Outcome.FAILURE,
          reason=result.reason, details={"status": result.status, "verdict": result.verdict,
                                         "ms": result.ms})
    # The JSON sample is not shown again: it may hold a password.
    return _page(context, values=shown, result=result)
