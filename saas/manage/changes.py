"""What every change made through the API does besides the change itself.

* ``audit`` — the audit row, in the request's transaction (so it commits with
  the change or not at all), marked ``via: api`` with the key's prefix.
* ``write_through`` / ``forget_app`` — the login path reads app settings from
  Redis (``saas.apps.cache``): the cache is written after the flush, within
  the request, and again once the transaction has committed (a login that
  missed the cache meanwhile may have refilled it from the old row); if the
  transaction aborts or fails to commit the entry is dropped, so PostgreSQL
  stays the truth.
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


def write_through(request, app: App) -> None:
    """Publish the app's new settings to the login path's cache."""
    request.db.flush()
    cache = request.app_cache
    cache.store(app)

    def after_commit(committed: bool) -> None:
        if committed:
            cache.store(app)
        else:
            cache.forget(app.app_id)

    current = request.tm.get()
    current.addAfterCommitHook(after_commit)
    current.addAfterAbortHook(cache.forget, args=(app.app_id,))


def forget_app(request, app_id: str) -> None:
    """Drop a deleted app from the cache, now and once the delete has committed."""
    request.db.flush()
    cache = request.app_cache
    cache.forget(app_id)
    request.tm.get().addAfterCommitHook(lambda _committed: cache.forget(app_id))
