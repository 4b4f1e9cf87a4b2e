"""The JSON refusals of the POST login endpoints (custom token, in-app).

Each refusal is audited before it is answered; the in-app login refuses a
disabled feature the same way as the custom-token login, so both views take
the refusal from here.
"""

from __future__ import annotations

from saas.apps.cache import AppConfig
from saas.audit.types import AuditType
from saas.errors import ApiError, Reason
from saas.flows.login import AcceptedUser, record_failure

FLOW = "custom_token"


def refused(request, app: AppConfig, reason: str, status: int = 400,
            error: str = "invalid_grant", description: str = "",
            user: AcceptedUser | None = None) -> ApiError:
    """The refusal's audit record (with the user when known) and its error."""
    record_failure(request, app, reason, {"flow": FLOW}, type_=AuditType.CUSTOM_TOKEN_FAILED,
                   user_id=user.user_id if user else None,
                   external_id=user.external_id if user else None)
    return ApiError(status, error, reason, description or reason.replace("_", " "),
                    headers={"Cache-Control": "no-store"})


def feature_disabled(request, app: AppConfig, what: str) -> ApiError:
    return refused(request, app, Reason.FEATURE_DISABLED, 403, "unauthorized_client",
                   f"{what} is not enabled for this app")
