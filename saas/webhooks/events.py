"""Which events exist, which audit records cause them, and what their ``data`` holds.

The sync's PostgreSQL path builds the same ``data`` objects in SQL
(``saas.webhooks.sync_sql``); the functions here are the Python spelling used
by the generic path and by dashboard and API actions. docs/webhooks.md lists
the shapes.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from saas.webhooks.models import EventType

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

# Audit record types of the login path (saas.flows, saas.tokens) → webhook types.
FROM_AUDIT: dict[str, str] = {
    "login.succeeded": EventType.LOGIN_SUCCEEDED,
    "custom_token.succeeded": EventType.LOGIN_SUCCEEDED,
    "login.failed": EventType.LOGIN_FAILED,
    "custom_token.failed": EventType.LOGIN_FAILED,
    "logout": EventType.SESSION_REVOKED,
    "token.refresh_reuse_detected": EventType.SESSION_REVOKED,
    "token.code_reuse_detected": EventType.SESSION_REVOKED,
}
# Why a session ended, as ``data.cause`` says.
SESSION_CAUSES: dict[str, str] = {
    "logout": "logout",
    "token.refresh_reuse_detected": "refresh_token_reused",
    "token.code_reuse_detected": "code_reused",
}


def user_event_id(user_id: str, version_ms: int) -> uuid.UUID:
    """Deterministic id of a user's created/updated event for one batch version.

    md5 of ``"{user_id}:{ms}"`` read as a UUID — the SQL path computes the very
    same value, so a batch applied twice, by either path, stages one event.
    """
    return uuid.UUID(hashlib.md5(f"{user_id}:{version_ms}".encode()).hexdigest())  # noqa: S324


def user_data(user_id: Any, external_id: str | None, custom: dict | None = None,
              profile: dict | None = None) -> dict[str, Any]:
    """``user.created`` / ``user.updated``: the fields this login set."""
    return {"user_id": str(user_id), "external_id": external_id,
            "custom": custom or {}, "profile": profile or {}}


def audit_data(record: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an event caused by a login-path audit record."""
    details = record.get("details") or {}
    data = {"user_id": record.get("user_id"), "external_id": record.get("external_id")}
    if FROM_AUDIT[record["type"]] == EventType.SESSION_REVOKED:
        return {**data, "session_id": details.get("sid"),
                "cause": SESSION_CAUSES[record["type"]]}
    return {**data, "reason": record.get("reason"), "flow": details.get("flow"),
            "attempt_id": details.get("attempt_id"), "audit_type": record["type"]}


def subscribed(events: list[Any], type_: str) -> bool:
    return type_ in (events or ())
