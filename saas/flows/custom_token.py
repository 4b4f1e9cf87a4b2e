"""Custom-token login (docs/protocol.md §5.1, the Skygear protocol).

The tenant's server signs an HS256 JWT with the app's custom-token secret
(``sub``, ``iat``, ``exp``, optional ``skyprofile``/``profile`` and
``custom``); the client posts it here and gets the token response of its §6.
"""

from __future__ import annotations

from pyramid.view import view_config

from saas.apps.lookup import load_app
from saas.apps.models import SecretKind
from saas.audit.types import AuditType
from saas.errors import ApiError, Reason
from saas.flows.login import (
    AcceptedUser,
    claim_first_use,
    record_login,
    user_id_for,
)
from saas.flows.refusals import FLOW, feature_disabled, refused
from saas.jwt.custom_tokens import verify_custom_token
from saas.jwt.rules import TokenRejected
from saas.redis import pipeline
from saas.request_body import read_params
from saas.tokens.issue import start_session
from saas.tokens.login_sessions import new_sid


@view_config(route_name="flows.custom_token", request_method="POST", renderer="json",
             require_csrf=False)
def custom_token_login(request):
    app = load_app(request, rate_limited=True)
    if not app.custom_token_enabled:
        raise feature_disabled(request, app, "custom-token login")
    try:
        params = read_params(request, allow_form=False)
    except ApiError as exc:
        raise refused(request, app, exc.reason, exc.status, "invalid_request") from exc
    token = params.get("token")
    if not isinstance(token, str) or not token.strip():
        raise refused(request, app, Reason.TOKEN_MISSING, error="invalid_request")
    now = request.now
    try:
        claims = verify_custom_token(
            token, secrets=app.secret_candidates(SecretKind.CUSTOM_TOKEN, request.secret_box,
                                                 now), now=int(now))
    except TokenRejected as exc:
        raise refused(request, app, exc.reason) from exc
    user = AcceptedUser(user_id_for(app, claims.sub), claims.sub, claims.custom, claims.profile,
                        {"previous_secret": claims.used_previous_secret})
    first_use, disabled = claim_first_use(request, app, claims.replay_key, claims.replay_ttl,
                                          user.user_id)
    if not first_use:
        raise refused(request, app, Reason.TOKEN_REPLAYED)
    if disabled:
        raise refused(request, app, Reason.USER_DISABLED, user=user)
    # The login's event and the session go out together: one round trip.
    pipe = pipeline(request.redis)
    record_login(request, app, user, AuditType.CUSTOM_TOKEN_SUCCEEDED, {"flow": FLOW}, pipe=pipe)
    return start_session(request, app, sid=new_sid(), user_id=user.user_id,
                         external_id=user.external_id, details={"flow": FLOW}, pipe=pipe)
