"""Login-path events, appended to a Redis stream for the sync workers.

The login path writes nothing to PostgreSQL (docs/architecture.md). Each outcome appends
**one** stream entry — a single ``XADD``, so it is atomic — to the stream of its
app's shard (``saas/event_streams.py``), holding the audit
records of the outcome and, for an accepted login, the user upsert with the
``custom``/``profile`` fields to merge. The format is documented in
``docs/events.md``; the drain of the stream into PostgreSQL is the sync
workers' job.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from saas.audit.types import AuditType, Outcome
from saas.client_ip import client_ip
from saas.event_streams import STREAM, StreamLayout

__all__ = ["STREAM", "AuditRecord", "UserUpsert", "append_event", "audit_from_request",
           "encode_event", "event_app_id", "uuid7"]


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit ms time, then random bits.

    Audit ids are the audit table's primary key; ordered ids append to its
    index instead of splitting random pages, which keeps the sync fast.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)
EVENT_VERSION = 1


@dataclass
class AuditRecord:
    """One audit row (docs/management-api.md, audit log); ``details`` never holds
    secrets or tokens."""

    type: AuditType
    outcome: Outcome
    app_id: str | None = None
    tenant_id: str | None = None
    reason: str | None = None
    user_id: str | None = None
    external_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid7()))


@dataclass
class UserUpsert:
    """An accepted login: create the user on first sight, merge its data."""

    app_uuid: str
    app_id: str
    user_id: str
    external_id: str
    login_at_ms: int
    custom: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None


def _printable(text: str) -> str:
    # Control characters never reach the audit table (PostgreSQL refuses NUL,
    # which would dead-letter the whole login event).
    return "".join(ch if ch.isprintable() else " " for ch in text)


def audit_from_request(request, type_: AuditType, outcome: Outcome,
                       **fields: Any) -> AuditRecord:
    """An audit record carrying the caller's address, agent and request id."""
    return AuditRecord(
        type=type_,
        outcome=outcome,
        ip=client_ip(request),
        user_agent=_printable((request.user_agent or "")[:512]) or None,
        request_id=getattr(request, "request_id", None),
        **fields,
    )


def encode_event(audit: list[AuditRecord], user: UserUpsert | None = None,
                 event_id: str | None = None) -> dict[str, str]:
    # orjson serialises the dataclasses itself (fields in declaration order,
    # compact, UTF-8): encoding with asdict + json was ~6 % of a login's CPU.
    body = {
        "v": EVENT_VERSION,
        "id": event_id or str(uuid.uuid4()),
        "audit": audit,
        "user": user,
    }
    try:
        return {"event": orjson.dumps(body).decode("utf-8")}
    except orjson.JSONEncodeError:  # e.g. a tenant's integer beyond 64 bits: plain json
        body.update(audit=[asdict(record) for record in audit],
                    user=asdict(user) if user else None)
        return {"event": json.dumps(body, separators=(",", ":"))}


def event_app_id(audit: list[AuditRecord], user: UserUpsert | None = None) -> str | None:
    """The app an event belongs to (its shard's key): the user's, else the
    first audit record's that names one."""
    if user is not None:
        return user.app_id
    return next((record.app_id for record in audit if record.app_id), None)


def append_event(pipe, streams: StreamLayout, audit: list[AuditRecord],
                 user: UserUpsert | None = None, event_id: str | None = None) -> None:
    """Queue the XADD on a pipeline (or a client) — one entry per outcome, on
    the stream of the event's app (one key: legal in any cluster pipeline)."""
    key = streams.key_for_app(event_app_id(audit, user))
    pipe.xadd(key, encode_event(audit, user, event_id))
