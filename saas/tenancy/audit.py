"""The audit row of a tenant's change, with the actor of whichever door it came through.

Written in the request's transaction, so it commits with the change or not at
all. A member's change carries ``"by": <email>``; an API key's carries
``"via": "api"`` and the key's display prefix (never the key itself).
"""

from __future__ import annotations

import uuid
from typing import Any

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.audit.services import record_event
from saas.security import ApiKeyIdentity
from saas.users.models import EndUser


def with_actor(identity, details: dict[str, Any] | None) -> dict[str, Any]:
    """The details with the actor added the way each door has always written it."""
    if isinstance(identity, ApiKeyIdentity):
        # "api_key" itself is a key record_event never stores; the prefix is no secret.
        return {**(details or {}), "via": "api", "api_key_prefix": identity.prefix}
    return {"by": identity.email, **(details or {})}


def audit(request, type_: str, *, tenant_id: uuid.UUID, app: App | None = None,
          user: EndUser | None = None, details: dict[str, Any] | None = None,
          **fields: Any) -> AuditEvent:
    """Record ``type_`` for the tenant (and app, and end user) by the caller."""
    if user is not None:
        fields.update(user_id=user.id, external_id=user.external_id)
    return record_event(
        request.db, type_, tenant_id=tenant_id,
        app_id=app.app_id if app is not None else None, request=request,
        details=with_actor(request.identity, details), **fields,
    )
