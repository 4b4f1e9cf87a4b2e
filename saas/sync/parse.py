"""Decoding and validating stream entries before they may touch the database.

An entry that fails here is a poison event: it goes to the dead-letter stream
with the error and never blocks the events behind it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from saas.users.models import end_user_id

MAX_TEXT = {"type": 64, "reason": 64, "external_id": 255, "ip": 64, "user_agent": 512,
            "request_id": 128, "app_id": 8}


class PoisonEvent(ValueError):
    """The entry cannot be applied; the message says why (no payload in it)."""


@dataclass(frozen=True)
class UserMerge:
    user_id: uuid.UUID
    app_uuid: uuid.UUID
    app_id: str
    external_id: str
    login_at_ms: int
    custom: dict[str, Any] | None
    profile: dict[str, Any] | None


@dataclass(frozen=True)
class ParsedEvent:
    entry_id: str
    audit: list[dict[str, Any]] = field(default_factory=list)
    user: UserMerge | None = None


def _uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise PoisonEvent(f"{what} is not a UUID") from exc


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise PoisonEvent(f"{what} is not a positive integer")
    return value


def _object(value: Any, what: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise PoisonEvent(f"{what} is not an object")
    return value


def _text(record: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT.get(name, 255):
        raise PoisonEvent(f"{name} is missing or not a short string")
    if "\x00" in value:
        raise PoisonEvent(f"{name} contains NUL")
    return value


def _audit(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise PoisonEvent("audit record is not an object")
    if record.get("outcome") not in ("success", "failure"):
        raise PoisonEvent("audit outcome is not success or failure")
    user_id = record.get("user_id")
    tenant_id = record.get("tenant_id")
    return {
        "id": _uuid(record.get("id"), "audit id"),
        "type": _text(record, "type", required=True),
        "outcome": record["outcome"],
        "app_id": _text(record, "app_id"),
        "tenant_id": _uuid(tenant_id, "tenant_id") if tenant_id else None,
        "reason": _text(record, "reason"),
        "user_id": _uuid(user_id, "user_id") if user_id else None,
        "external_id": _text(record, "external_id"),
        "ip": _text(record, "ip"),
        "user_agent": _text(record, "user_agent"),
        "request_id": _text(record, "request_id"),
        "at_ms": _int(record.get("at_ms"), "at_ms"),
        "details": _object(record.get("details"), "details") or {},
    }


def _user(record: Any) -> UserMerge:
    if not isinstance(record, dict):
        raise PoisonEvent("user is not an object")
    app_uuid = _uuid(record.get("app_uuid"), "app_uuid")
    external_id = _text(record, "external_id", required=True)
    user_id = _uuid(record.get("user_id"), "user_id")
    if user_id != end_user_id(app_uuid, external_id):
        raise PoisonEvent("user_id does not derive from app_uuid and external_id")
    return UserMerge(
        user_id=user_id,
        app_uuid=app_uuid,
        app_id=_text(record, "app_id", required=True),
        external_id=external_id,
        login_at_ms=_int(record.get("login_at_ms"), "login_at_ms"),
        custom=_object(record.get("custom"), "custom"),
        profile=_object(record.get("profile"), "profile"),
    )


def parse_entry(entry_id: str, fields: dict[bytes, bytes]) -> ParsedEvent:
    raw = fields.get(b"event")
    if raw is None:
        raise PoisonEvent("entry has no event field")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise PoisonEvent("event is not JSON") from exc
    if not isinstance(body, dict) or body.get("v") != 1:
        raise PoisonEvent("event is not a version 1 object")
    audit = body.get("audit") or []
    if not isinstance(audit, list):
        raise PoisonEvent("audit is not a list")
    user = body.get("user")
    return ParsedEvent(
        entry_id=entry_id,
        audit=[_audit(record) for record in audit],
        user=_user(user) if user is not None else None,
    )
