"""Which events exist, which audit records cause them, and what their ``data`` holds.

One table, :data:`FROM_AUDIT`, says which login-path audit records become
which events with which ``data`` fields, and :data:`USER_DATA` the fields of
``user.created`` / ``user.updated``. Both spellings of the rule come from it:
:func:`audit_data` / :func:`user_data` in Python (the sync's generic path) and
:func:`audit_data_sql` / :func:`user_data_sql` for the set-based SQL of the
sync's PostgreSQL path (``saas.sync.webhook_events``), so the two cannot drift.
docs/webhooks.md lists the shapes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from saas.audit.types import AuditType
from saas.webhooks.models import EventType

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)


@dataclass(frozen=True)
class UserChange:
    """What one sync batch says about one user: the outbox's view of it."""

    user_id: str
    app_uuid: Any
    external_id: str | None
    custom: dict[str, Any]
    profile: dict[str, Any]
    version_ms: int  # the batch's last login of the user: the event's time and id


@dataclass(frozen=True)
class Column:
    """A value of the record as it is (``user_id``, ``reason``, ``type``…)."""

    name: str

    def of(self, record: dict[str, Any], _rule: AuditRule | None) -> Any:
        return record.get(self.name)

    def sql(self, row: str, _rule: AuditRule | None) -> str:
        return f"{row}.{self.name}"


@dataclass(frozen=True)
class Detail:
    """A key of the record's ``details`` object (null when absent)."""

    key: str

    def of(self, record: dict[str, Any], _rule: AuditRule | None) -> Any:
        return (record.get("details") or {}).get(self.key)

    def sql(self, row: str, _rule: AuditRule | None) -> str:
        return f"{row}.details -> '{self.key}'"


@dataclass(frozen=True)
class Cause:
    """Why a session ended: fixed per audit type (``AuditRule.cause``)."""

    def of(self, _record: dict[str, Any], rule: AuditRule | None) -> Any:
        return rule.cause

    def sql(self, _row: str, rule: AuditRule | None) -> str:
        return f"'{rule.cause}'"


Source = Column | Detail | Cause

LOGIN_DATA: dict[str, Source] = {
    "user_id": Column("user_id"), "external_id": Column("external_id"),
    "reason": Column("reason"), "flow": Detail("flow"), "attempt_id": Detail("attempt_id"),
    "audit_type": Column("type"),
}
SESSION_DATA: dict[str, Source] = {
    "user_id": Column("user_id"), "external_id": Column("external_id"),
    "session_id": Detail("sid"), "cause": Cause(),
}
USER_DATA: dict[str, Source] = {
    "user_id": Column("user_id"), "external_id": Column("external_id"),
    "custom": Column("custom"), "profile": Column("profile"),
}


@dataclass(frozen=True)
class AuditRule:
    event: EventType
    data: dict[str, Source]
    cause: str | None = None


# Audit record types of the login path (saas.flows, saas.tokens) → webhook events.
FROM_AUDIT: dict[str, AuditRule] = {
    AuditType.LOGIN_SUCCEEDED: AuditRule(EventType.LOGIN_SUCCEEDED, LOGIN_DATA),
    AuditType.CUSTOM_TOKEN_SUCCEEDED: AuditRule(EventType.LOGIN_SUCCEEDED, LOGIN_DATA),
    AuditType.LOGIN_FAILED: AuditRule(EventType.LOGIN_FAILED, LOGIN_DATA),
    AuditType.CUSTOM_TOKEN_FAILED: AuditRule(EventType.LOGIN_FAILED, LOGIN_DATA),
    AuditType.LOGOUT: AuditRule(EventType.SESSION_REVOKED, SESSION_DATA, cause="logout"),
    AuditType.TOKEN_REVOKED: AuditRule(EventType.SESSION_REVOKED, SESSION_DATA,
                                       cause="revocation"),
    AuditType.TOKEN_REFRESH_REUSE_DETECTED: AuditRule(EventType.SESSION_REVOKED, SESSION_DATA,
                                              cause="refresh_token_reused"),
    AuditType.TOKEN_CODE_REUSE_DETECTED: AuditRule(EventType.SESSION_REVOKED, SESSION_DATA,
                                           cause="code_reused"),
}


def user_event_id(user_id: str, version_ms: int) -> uuid.UUID:
    """Deterministic id of a user's created/updated event for one batch version.

    md5 of ``"{user_id}:{ms}"`` read as a UUID (:func:`user_event_id_sql` is
    the same in SQL), so a batch applied twice, by either path, stages one event.
    """
    return uuid.UUID(hashlib.md5(f"{user_id}:{version_ms}".encode()).hexdigest())  # noqa: S324


def user_event_id_sql(user_id: str, version_ms: str) -> str:
    return f"md5({user_id}::text || ':' || {version_ms})::uuid"


def user_data(change: UserChange) -> dict[str, Any]:
    """``user.created`` / ``user.updated``: the fields this login set."""
    return {name: source.of(vars(change), None) for name, source in USER_DATA.items()}


def user_data_sql(row: str) -> str:
    """:func:`user_data` over a row with a :class:`UserChange`'s columns."""
    return _build_object(USER_DATA, row, None)


def audit_data(record: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an event caused by a login-path audit record."""
    rule = FROM_AUDIT[record["type"]]
    return {name: source.of(record, rule) for name, source in rule.data.items()}


def audit_event_type_sql(row: str) -> str:
    """The event type of an audit row (``FROM_AUDIT``'s types only)."""
    cases = " ".join(f"WHEN '{t}' THEN '{rule.event.value}'" for t, rule in FROM_AUDIT.items())
    return f"CASE {row}.type {cases} END"


def audit_data_sql(row: str) -> str:
    """:func:`audit_data` over a row with an audit record's columns."""
    cases = " ".join(f"WHEN '{t}' THEN {_build_object(rule.data, row, rule)}"
                     for t, rule in FROM_AUDIT.items())
    return f"CASE {row}.type {cases} END"


def _build_object(fields: dict[str, Source], row: str, rule: AuditRule | None) -> str:
    pairs = ", ".join(f"'{name}', {source.sql(row, rule)}" for name, source in fields.items())
    return f"jsonb_build_object({pairs})"


def subscribed(events: list[Any], type_: str) -> bool:
    return type_ in (events or ())
