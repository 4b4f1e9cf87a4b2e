"""The transactional outbox: webhook events written with the change that causes them.

An event row and one delivery row per subscribed endpoint are written in the
caller's transaction — the sync batch's, or a dashboard/API request's —
so a rolled-back change leaves no event and nothing is ever delivered for it.
Workers deliver committed rows only (``saas.webhooks.delivery``); a "kick"
after the commit wakes them at once, and beat finds anything a lost kick missed.
A disabled endpoint gets its deliveries too: they are held (never claimed)
until it is enabled again, then go out with their original event ids.

* ``stage_sync_batch_generic(session, changes, audit)`` — a sync batch on the
  generic path (SQLite in development), before ``upsert_users``. The sync's
  PostgreSQL path stages the same events in SQL over its own staging tables
  (``saas.sync.webhook_events``) and calls ``kick_when_committed``.
* ``stage(request, app, type, data)`` — a member's or API key's action.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.clock import from_ms
from saas.db import utcnow
from saas.users.models import EndUser
from saas.webhooks.dispatch import kick_after_commit, kick_now
from saas.webhooks.events import (
    FROM_AUDIT,
    UserChange,
    audit_data,
    subscribed,
    user_data,
    user_event_id,
)
from saas.webhooks.models import (
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


def kick_when_committed(session: Session) -> None:
    """Wake the delivery workers once this session's transaction commits."""
    if not session.info.get("webhooks.kick"):
        session.info["webhooks.kick"] = True
        sa_event.listen(session, "after_commit", _after_commit, once=True)


def _after_commit(session: Session) -> None:
    session.info.pop("webhooks.kick", None)
    kick_now()


def _endpoints_by_app(session: Session, app_uuids: set[uuid.UUID]) -> dict[uuid.UUID, list]:
    if not app_uuids:
        return {}
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.app_id, WebhookEndpoint.events)
        .where(WebhookEndpoint.app_id.in_(app_uuids))  # disabled ones too: held for them
    ).all()
    found: dict[uuid.UUID, list] = {}
    for row in rows:
        found.setdefault(row.app_id, []).append(row)
    return found


def _insert_events(session: Session, events: list[dict[str, Any]],
                   endpoints: dict[uuid.UUID, list]) -> int:
    """Insert new events (an existing id is skipped) and their deliveries."""
    if not events:
        return 0
    known = set(session.scalars(select(WebhookEvent.id).where(
        WebhookEvent.id.in_([e["id"] for e in events]))))
    fresh = [row for row in {e["id"]: e for e in events}.values() if row["id"] not in known]
    session.add_all(WebhookEvent(**row) for row in fresh)
    session.flush()  # events first: no ORM relationship orders the two inserts
    now = utcnow()
    deliveries = [WebhookDelivery(event_id=row["id"], endpoint_id=endpoint.id,
                                  next_attempt_at=now, retry_from=now)
                  for row in fresh for endpoint in endpoints.get(row["app_id"], ())
                  if subscribed(endpoint.events, row["type"])]
    session.add_all(deliveries)
    session.flush()
    return len(deliveries)


def _user_events(session: Session, changes: list[UserChange],
                 endpoints: dict[uuid.UUID, list]) -> list[dict[str, Any]]:
    wanted = [change for change in changes if uuid.UUID(str(change.app_uuid)) in endpoints]
    if not wanted:
        return []
    stored = {row.id: row for row in session.execute(
        select(EndUser.id, EndUser.custom, EndUser.profile)
        .where(EndUser.id.in_([uuid.UUID(change.user_id) for change in wanted])))}
    events = []
    for change in wanted:
        before = stored.get(uuid.UUID(change.user_id))
        if before is None:
            type_ = EventType.USER_CREATED
        elif _changes(before.custom, change.custom) or _changes(before.profile, change.profile):
            type_ = EventType.USER_UPDATED
        else:
            continue
        app_uuid = uuid.UUID(str(change.app_uuid))
        if not any(subscribed(e.events, type_) for e in endpoints[app_uuid]):
            continue
        events.append({
            "id": user_event_id(change.user_id, change.version_ms), "app_id": app_uuid,
            "type": type_.value, "created_at": from_ms(change.version_ms),
            "data": user_data(change),
        })
    return events


def _changes(stored: dict[str, Any] | None, sent: dict[str, Any]) -> bool:
    stored = stored or {}
    return any(name not in stored or stored[name] != value for name, value in sent.items())


def _audit_events(session: Session, audit: list[dict[str, Any]],
                  endpoints: dict[uuid.UUID, list],
                  app_uuids: dict[str, uuid.UUID]) -> list[dict[str, Any]]:
    events = []
    for record in audit:
        rule = FROM_AUDIT.get(record["type"])
        app_uuid = app_uuids.get(record.get("app_id") or "")
        if rule is None or app_uuid is None:
            continue
        type_ = rule.event
        if not any(subscribed(e.events, type_) for e in endpoints.get(app_uuid, ())):
            continue
        events.append({"id": uuid.UUID(record["id"]), "app_id": app_uuid, "type": str(type_),
                       "created_at": from_ms(record["at_ms"]), "data": audit_data(record)})
    return events


def stage_sync_batch_generic(session: Session, changes: list[UserChange],
                             audit: list[dict[str, Any]]) -> None:
    """Generic path: the same events as the SQL, in Python; run before the upsert."""
    if not session.scalar(select(WebhookEndpoint.id).limit(1)):
        return
    public_ids = {record["app_id"] for record in audit
                  if record.get("app_id") and record["type"] in FROM_AUDIT}
    app_uuids: dict[str, uuid.UUID] = {}
    if public_ids:
        rows = session.execute(select(App.app_id, App.id).where(App.app_id.in_(public_ids)))
        app_uuids = {public_id: internal for public_id, internal in rows}
    wanted = {uuid.UUID(str(c.app_uuid)) for c in changes} | set(app_uuids.values())
    endpoints = _endpoints_by_app(session, wanted)
    if not endpoints:
        return
    events = _user_events(session, changes, endpoints)
    events += _audit_events(session, audit, endpoints, app_uuids)
    if _insert_events(session, events, endpoints):
        kick_when_committed(session)


def stage(request, app: App, type_: EventType, data: dict[str, Any]) -> uuid.UUID | None:
    """An event caused by a request (dashboard or API), in the request's transaction.

    Returns the event id, or None when no endpoint of the app (enabled or held) wants it.
    The kick leaves only if the request's transaction commits.
    """
    db = request.db
    endpoints = _endpoints_by_app(db, {app.id})
    if not any(subscribed(e.events, type_) for e in endpoints.get(app.id, ())):
        return None
    event_id = uuid.uuid4()
    _insert_events(db, [{"id": event_id, "app_id": app.id, "type": type_.value,
                         "created_at": utcnow(), "data": data}], endpoints)
    kick_after_commit(request)
    return event_id
