"""Decoding and validating stream entries before they may touch the database.

An entry that fails here is a poison event: it goes to the dead-letter stream
with the error and never blocks the events behind it. This runs once per event
in the drain's hot loop, so the checks are written flat.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from saas.audit.types import Outcome
from saas.sync.versions import field_version

OUTCOMES = frozenset(Outcome)

# Optional short strings of an audit record, with their column sizes.
_AUDIT_TEXT = (("app_id", 8), ("reason", 64), ("external_id", 255), ("ip", 64),
               ("user_agent", 512), ("request_id", 128))
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_INT = 2**53


class PoisonEvent(ValueError):
    """The entry cannot be applied; the message says why (no payload in it)."""


@dataclass(frozen=True, slots=True)
class UserMerge:
    user_id: str  # canonical UUID text
    app_uuid: uuid.UUID
    app_id: str
    external_id: str
    login_at_ms: int
    version: str
    custom: dict[str, Any] | None
    profile: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    entry_id: str
    audit: list[dict[str, Any]] = field(default_factory=list)
    user: UserMerge | None = None


def _uuid_text(value: Any, what: str) -> str:
    """A canonical UUID string, kept as text: the database casts it."""
    if value.__class__ is not str or _UUID_TEXT.fullmatch(value) is None:
        raise PoisonEvent(f"{what} is not a UUID")
    return value


@functools.lru_cache(maxsize=4096)
def _app_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def derived_user_id(app_uuid: uuid.UUID, external_id: str) -> str:
    """``str(uuid5(app_uuid, external_id))`` without building UUID objects: the
    drain checks every event's user id, so this runs 10⁵ times a second."""
    digest = bytearray(hashlib.sha1(app_uuid.bytes + external_id.encode("utf-8"),
                                    usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ms(value: Any, what: str) -> int:
    if value.__class__ is not int or not 0 <= value < _MAX_INT:
        raise PoisonEvent(f"{what} is not a positive integer")
    return value


def _short_text(value: Any, name: str, limit: int) -> str:
    if value.__class__ is not str or not 0 < len(value) <= limit or "\x00" in value:
        raise PoisonEvent(f"{name} is missing or not a short string")
    return value


def _object(value: Any, what: str) -> dict[str, Any] | None:
    if value is not None and value.__class__ is not dict:
        raise PoisonEvent(f"{what} is not an object")
    return value


def _audit(record: Any) -> dict[str, Any]:
    if record.__class__ is not dict:
        raise PoisonEvent("audit record is not an object")
    outcome = record.get("outcome")
    if outcome not in OUTCOMES:
        raise PoisonEvent("audit outcome is not success or failure")
    row = {
        "id": _uuid_text(record.get("id"), "audit id"),
        "type": _short_text(record.get("type"), "type", 64),
        "outcome": outcome,
        "at_ms": _ms(record.get("at_ms"), "at_ms"),
        "details": _object(record.get("details"), "details") or {},
    }
    for name in ("tenant_id", "user_id"):
        value = record.get(name)
        row[name] = _uuid_text(value, name) if value is not None else None
    for name, limit in _AUDIT_TEXT:
        value = record.get(name)
        row[name] = _short_text(value, name, limit) if value is not None else None
    return row


def _user(record: Any, event_id: str) -> UserMerge:
    if record.__class__ is not dict:
        raise PoisonEvent("user is not an object")
    app_uuid = _app_uuid(_uuid_text(record.get("app_uuid"), "app_uuid"))
    external_id = _short_text(record.get("external_id"), "external_id", 255)
    user_id = derived_user_id(app_uuid, external_id)
    if user_id != record.get("user_id"):
        raise PoisonEvent("user_id does not derive from app_uuid and external_id")
    login_at_ms = _ms(record.get("login_at_ms"), "login_at_ms")
    return UserMerge(
        user_id=user_id,
        app_uuid=app_uuid,
        app_id=_short_text(record.get("app_id"), "app_id", 8),
        external_id=external_id,
        login_at_ms=login_at_ms,
        version=field_version(login_at_ms, event_id),
        custom=_object(record.get("custom"), "custom"),
        profile=_object(record.get("profile"), "profile"),
    )


def parse_entry(entry_id: str, fields: dict[bytes, bytes]) -> ParsedEvent:
    raw = fields.get(b"event")
    if raw is None:
        raise PoisonEvent("entry has no event field")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonEvent("event is not JSON") from exc
    if body.__class__ is not dict or body.get("v") != 1:
        raise PoisonEvent("event is not a version 1 object")
    audit = body.get("audit") or []
    if audit.__class__ is not list:
        raise PoisonEvent("audit is not a list")
    user = body.get("user")
    return ParsedEvent(
        entry_id=entry_id,
        audit=[_audit(record) for record in audit],
        user=_user(user, _uuid_text(body.get("id"), "event id")) if user is not None else None,
    )
