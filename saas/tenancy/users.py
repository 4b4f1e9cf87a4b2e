"""A tenant's changes to its end users, the same through either door.

Each function makes the change in PostgreSQL and in the login path's Redis
mirrors, stages its webhook (``saas.users.services``) and writes its audit
row. A call that changes nothing records nothing.
"""

from __future__ import annotations

from typing import Any

from saas.apps.models import App
from saas.tenancy.audit import audit
from saas.users import services
from saas.users.models import EndUser


def _audit(request, type_: str, app: App, user: EndUser, **kw: Any) -> None:
    audit(request, type_, tenant_id=app.tenant_id, app=app, user=user, **kw)


def set_disabled(request, app: App, user: EndUser, disabled: bool) -> bool:
    """Disable (refuse logins, end sessions) or enable the user; False if it was so already."""
    if user.disabled == disabled:
        return False
    services.set_user_disabled(request, app, user, disabled)
    _audit(request, "user.disabled" if disabled else "user.enabled", app, user)
    return True


def revoke_sessions(request, app: App, user: EndUser) -> int:
    """End every session of the user; returns how many were live."""
    count = services.revoke_sessions(request, app, user)
    _audit(request, "session.revoked", app, user, details={"sessions": count})
    return count


def delete_user(request, app: App, user: EndUser) -> None:
    """Forget the user; a later login creates them afresh."""
    _audit(request, "user.deleted", app, user)
    services.delete_user(request, app, user)
