"""A tenant's changes to its end users, the same through either door.

Each function makes the change in PostgreSQL and in the login path's Redis
mirrors, stages its webhook and writes its audit row. A call that changes nothing records nothing.
"""

from __future__ import annotations

from typing import Any

from saas.apps.models import App
from saas.audit.types import AuditType
from saas.tenancy.audit import audit
from saas.users import services
from saas.users.models import EndUser
from saas.webhooks import outbox as webhooks
from saas.webhooks.models import EventType


def _audit(request, type_: str, app: App, user: EndUser, **kw: Any) -> None:
    audit(request, type_, tenant_id=app.tenant_id, app=app, user=user, **kw)


def _named(user: EndUser) -> dict[str, Any]:
    """How a webhook about a tenant's action on a user names them (docs/webhooks.md)."""
    return {"user_id": str(user.id), "external_id": user.external_id}


def set_disabled(request, app: App, user: EndUser, disabled: bool) -> bool:
    """Disable (refuse logins, end sessions) or enable the user; False if it was so already."""
    if user.disabled == disabled:
        return False
    count = services.set_user_disabled(request, app, user, disabled)
    if disabled:
        webhooks.stage(request, app, EventType.USER_DISABLED,
                       {**_named(user), "sessions_revoked": count})
    _audit(request, AuditType.USER_DISABLED if disabled else AuditType.USER_ENABLED, app, user)
    return True


def revoke_sessions(request, app: App, user: EndUser) -> int:
    """End every session of the user; returns how many were live."""
    count = services.revoke_sessions(request, app, user)
    webhooks.stage(request, app, EventType.SESSION_REVOKED, {
        **_named(user), "session_id": None, "cause": "revoked_by_tenant",
        "sessions_revoked": count})
    _audit(request, AuditType.SESSION_REVOKED, app, user, details={"sessions": count})
    return count


def delete_user(request, app: App, user: EndUser) -> None:
    """Forget the user; a later login creates them afresh."""
    _audit(request, AuditType.USER_DELETED, app, user)
    named = _named(user)  # read before the row goes
    count = services.delete_user(request, app, user)
    webhooks.stage(request, app, EventType.USER_DELETED, {**named, "sessions_revoked": count})
