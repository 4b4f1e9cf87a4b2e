"""In-app form login (docs/protocol.md §5.2): ``POST /v1/apps/{app_id}/login/custom``.

The app collects the user's fields itself and posts them as ``{"data": {…}}``;
Bridgekeeper asks the tenant endpoint over the back-channel and answers with
the token response — or at once with 401 ``access_denied`` when the tenant
refuses (the fix for the source protocol's stuck in-app browser).
"""

from __future__ import annotations

import json
import uuid

from pyramid.view import view_config

from saas.apps.lookup import load_app
from saas.audit.types import AuditType
from saas.errors import ApiError, Reason
from saas.flows.backchannel_login import BackchannelFailed, ask_tenant, new_backchannel_state
from saas.flows.entry import MAX_DATA_BYTES
from saas.flows.login import LoginFailed, record_login, record_refusal
from saas.flows.refusals import feature_disabled
from saas.redis import pipeline
from saas.request_body import read_params
from saas.tokens.issue import start_session
from saas.tokens.login_sessions import new_sid

FLOW = "inapp"


@view_config(route_name="flows.inapp_login", request_method="POST", renderer="json",
             require_csrf=False)
def inapp_login(request):
    app = load_app(request, rate_limited=True)
    if not app.backchannel or not app.custom_auth_endpoint:
        raise feature_disabled(request, app, "in-app login")
    data = read_params(request, allow_form=False).get("data")
    if not isinstance(data, dict) or len(json.dumps(data)) > MAX_DATA_BYTES:
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                       "data must be a JSON object of at most 4 KiB")
    attempt_id = uuid.uuid4().hex
    record = {"attempt_id": attempt_id, "flow": FLOW}
    try:
        user = ask_tenant(request, app, new_backchannel_state(app), attempt_id, data)
    except BackchannelFailed as failure:
        record_refusal(request, app, failure, record)
        raise ApiError(failure.status, failure.error, failure.reason, failure.description,
                       headers={"Cache-Control": "no-store"}) from failure
    except LoginFailed as failure:
        # The tenant answered with a token we cannot accept: its failure (502),
        # unless the user is disabled here.
        record_refusal(request, app, failure, record)
        disabled = failure.reason == Reason.USER_DISABLED
        raise ApiError(403 if disabled else 502, "access_denied" if disabled else "server_error",
                       failure.reason, failure.description,
                       headers={"Cache-Control": "no-store"}) from failure
    pipe = pipeline(request.redis)  # the login's event and the session: one round trip
    record_login(request, app, user, AuditType.LOGIN_SUCCEEDED, record, pipe=pipe)
    return start_session(request, app, sid=new_sid(), user_id=user.user_id,
                         external_id=user.external_id, details=record, pipe=pipe)
