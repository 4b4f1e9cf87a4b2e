"""Reading the audit log: filtered pages, CSV, and login statistics."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.types import AuditType
from saas.clock import from_ms, to_ms
from saas.pagination import BadCursor, decode_cursor, encode_cursor

MAX_PAGE = 500
LOGIN_SUCCESS = (AuditType.LOGIN_SUCCEEDED, AuditType.CUSTOM_TOKEN_SUCCEEDED)
LOGIN_FAILURE = (AuditType.LOGIN_FAILED, AuditType.CUSTOM_TOKEN_FAILED)
CSV_COLUMNS = ("id", "at", "type", "outcome", "reason", "user_id", "external_id", "ip",
               "user_agent", "request_id", "details")


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "outcome": event.outcome.value if hasattr(event.outcome, "value") else event.outcome,
        "reason": event.reason,
        "user_id": str(event.user_id) if event.user_id else None,
        "external_id": event.external_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "at": from_ms(to_ms(event.at)).isoformat(),
        "details": event.details,
    }


def _filtered(app_id: str, filters: dict[str, Any]):
    statement = select(AuditEvent).where(AuditEvent.app_id == app_id)
    if filters.get("type"):
        statement = statement.where(AuditEvent.type == filters["type"])
    if filters.get("outcome"):
        statement = statement.where(AuditEvent.outcome == filters["outcome"])
    if filters.get("user_id"):
        statement = statement.where(AuditEvent.user_id == filters["user_id"])
    if filters.get("since"):
        statement = statement.where(AuditEvent.at >= filters["since"])
    if filters.get("until"):
        statement = statement.where(AuditEvent.at < filters["until"])
    return statement


def list_events(db: Session, app_id: str, filters: dict[str, Any], *, limit: int = 100,
                cursor: str | None = None) -> tuple[list[AuditEvent], str | None]:
    """Newest first, paged by (time, id) so equal times never repeat or skip."""
    statement = _filtered(app_id, filters)
    if cursor:
        at_ms, event_id = decode_cursor(cursor, 2)
        try:
            at, key = from_ms(int(at_ms)), uuid.UUID(str(event_id))
        except (TypeError, ValueError) as exc:
            raise BadCursor(cursor) from exc
        statement = statement.where(
            (AuditEvent.at < at) | ((AuditEvent.at == at) & (AuditEvent.id < key)))
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(db.scalars(statement.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                           .limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(to_ms(last.at), str(last.id))
    return rows[:limit], next_cursor


def events_csv(db: Session, app_id: str, filters: dict[str, Any],
               max_rows: int = 100_000) -> Iterator[str]:
    """The filtered log as CSV lines (header first), streamed in time order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    statement = _filtered(app_id, filters).order_by(AuditEvent.at, AuditEvent.id)
    for event in db.scalars(statement.limit(max_rows).execution_options(yield_per=1000)):
        row = event_as_dict(event)
        row["details"] = details_json(row["details"])
        # Cells a spreadsheet would run as formulas are quoted with a leading '.
        writer.writerow([_csv_safe(row[column]) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def details_json(details: dict[str, Any] | None) -> str:
    """``details`` as compact JSON with sorted keys (stable, parseable); empty when none."""
    if not details:
        return ""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def login_stats(db: Session, app_id: str, *, bucket: str, since: dt.datetime) -> dict[str, Any]:
    """Logins and failures per hour or day since ``since``, failures by reason."""
    rows = db.execute(
        select(AuditEvent.at, AuditEvent.type, AuditEvent.reason)
        .where(AuditEvent.app_id == app_id, AuditEvent.at >= since,
               AuditEvent.type.in_(LOGIN_SUCCESS + LOGIN_FAILURE))
    ).all()
    step = dt.timedelta(hours=1) if bucket == "hour" else dt.timedelta(days=1)
    counts: dict[dt.datetime, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    for at, type_, reason in rows:
        start = _bucket_start(from_ms(to_ms(at)), bucket)
        outcome = "logins" if type_ in LOGIN_SUCCESS else "failures"
        counts[start][outcome] += 1
        if outcome == "failures":
            reasons[reason or "unknown"] += 1
    buckets = []
    cursor = _bucket_start(from_ms(to_ms(since)), bucket)
    end = _bucket_start(dt.datetime.now(dt.UTC), bucket)
    while cursor <= end and len(buckets) < 24 * 92:
        buckets.append({"start": cursor.isoformat(), "logins": counts[cursor]["logins"],
                        "failures": counts[cursor]["failures"]})
        cursor += step
    return {"bucket": bucket, "since": since.isoformat(), "buckets": buckets,
            "failures_by_reason": dict(reasons.most_common())}


def _bucket_start(value: dt.datetime, bucket: str) -> dt.datetime:
    value = value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0) if bucket == "day" else value


CSV_CHUNK = 64 * 1024


def csv_stream(sessionmaker, app_id: str, filters: dict[str, Any]) -> Iterator[bytes]:
    """The CSV in chunks, read through its own session: the WSGI server iterates
    the body after the request's transaction has ended and its session closed."""
    session = sessionmaker()
    try:
        buffered: list[str] = []
        size = 0
        for line in events_csv(session, app_id, filters):
            buffered.append(line)
            size += len(line)
            if size >= CSV_CHUNK:
                yield "".join(buffered).encode("utf-8")
                buffered, size = [], 0
        yield "".join(buffered).encode("utf-8")
    finally:
        session.close()
