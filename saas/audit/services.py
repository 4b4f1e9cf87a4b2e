"""Writing audit rows from dashboard and management actions.

Login-path events go through Redis and the sync workers instead (docs/events.md);
changes made on the dashboard, the management API or the CLI are written here,
in the same transaction as the change, so one never lands without the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.types import Outcome
from saas.client_ip import client_ip

# Details must never carry these, whatever a caller passes.
_FORBIDDEN_DETAIL_KEYS = frozenset(
    {"password", "secret", "token", "api_key", "key", "refresh_token", "access_token"}
)


def record_event(
    db: Session,
    type_: str,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    tenant_id: uuid.UUID | None = None,
    app_id: str | None = None,
    reason: str | None = None,
    user_id: uuid.UUID | None = None,
    external_id: str | None = None,
    request=None,
    facts: Mapping[str, str | None] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit row. Who asked comes from ``request``, or from ``facts``
    (:func:`request_facts`, carried to a task that acts on a request later)."""
    details = {k: v for k, v in (details or {}).items() if k not in _FORBIDDEN_DETAIL_KEYS}
    event = AuditEvent(
        tenant_id=tenant_id,
        app_id=app_id,
        type=type_,
        outcome=outcome,
        reason=reason,
        user_id=user_id,
        external_id=external_id,
        details=details,
    )
    if request is not None:
        facts = request_facts(request)
    if facts is not None:
        event.ip = facts.get("ip")
        event.user_agent = facts.get("user_agent")
        event.request_id = facts.get("request_id")
    db.add(event)
    return event


def request_facts(request) -> dict[str, str | None]:
    """Who asked: the client IP, user agent and request id an audit row keeps."""
    return {
        "ip": client_ip(request),
        "user_agent": (request.user_agent or "")[:512] or None,
        "request_id": getattr(request, "request_id", None),
    }
