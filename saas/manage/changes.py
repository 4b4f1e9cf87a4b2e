"""What every change made through the API does besides the change itself.

* ``audit`` — the audit row, in the request's transaction (so it commits with
  the change or not at all), marked ``via: api`` with the key's prefix.
* publishing the app's new settings to the login path: ``publish_app`` /
  ``unpublish_app`` of ``saas.apps.cache``, shared with the dashboard.
"""

from __future__ import annotations

from typing import Any

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.audit.services import record_event
from saas.users.models import EndUser


def audit(request, type_: str, app: App, *, user: EndUser | None = None,
          details: dict[str, Any] | None = None) -> AuditEvent:
    identity = request.api_key
    return record_event(
        request.db, type_, tenant_id=app.tenant_id, app_id=app.app_id,
        user_id=user.id if user else None, external_id=user.external_id if user else None,
        request=request,
        # "api_key" itself is a key record_event never stores; the prefix is no secret.
        details={**(details or {}), "via": "api", "api_key_prefix": identity.prefix},
    )
