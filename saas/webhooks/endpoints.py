"""What the dashboard and the management API do with webhook endpoints.

Every lookup is scoped to one app (itself already scoped to the caller's
tenant), so a foreign id is simply not found. Secrets are generated here,
stored encrypted with the service's ``SecretBox`` and only ever returned to a
caller that asked to see them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from saas.apps.models import App
from saas.apps.validation import InvalidSetting, validate_endpoint
from saas.crypto import SecretBox
from saas.db import utcnow
from saas.pagination import BadCursor, decode_cursor, encode_cursor
from saas.webhooks.delivery import as_utc
from saas.webhooks.dispatch import kick_after_commit
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from saas.webhooks.signing import new_secret

MAX_ENDPOINTS_PER_APP = 10
MAX_PAGE = 100
DEFAULT_GRACE_SECONDS = 24 * 3600
MAX_GRACE_SECONDS = 7 * 24 * 3600
# A due delivery nobody tried for this long: no delivery worker seems to run.
OVERDUE = dt.timedelta(minutes=1)
FIELDS = ("url", "events", "enabled")


class UnknownFields(ValueError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def checked_events(value: Any) -> list[str]:
    """A non-empty list of known event types, deduplicated, in the documented order."""
    if not isinstance(value, list) or not value:
        raise InvalidSetting("events must be a non-empty list of event types.")
    unknown = [v for v in value if not isinstance(v, str) or v not in EVENT_TYPES]
    if unknown:
        raise InvalidSetting("Unknown event types: " + ", ".join(map(str, unknown))
                             + ". Choose from " + ", ".join(EVENT_TYPES) + ".")
    return [t for t in EVENT_TYPES if t in value]


def checked_url(value: Any, *, allow_private: bool) -> str:
    """The receiver's URL, through the back-channel's SSRF guard (https in production)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSetting("url is required.")
    return validate_endpoint(value, allow_private=allow_private)


def checked_fields(body: dict[str, Any], *, allow_private: bool,
                   partial: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise UnknownFields(unknown)
    if not partial:
        for name in ("url", "events"):
            if name not in body:
                raise InvalidSetting(f"{name} is required.")
    fields: dict[str, Any] = {}
    if "url" in body:
        fields["url"] = checked_url(body["url"], allow_private=allow_private)
    if "events" in body:
        fields["events"] = checked_events(body["events"])
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise InvalidSetting("enabled must be true or false.")
        fields["enabled"] = body["enabled"]
    return fields


def endpoints_of_app(db: Session, app: App) -> list[WebhookEndpoint]:
    return list(db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.app_id == app.id)
                           .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def endpoint_of_app(db: Session, app: App, endpoint_id: str) -> WebhookEndpoint | None:
    key = _uuid(endpoint_id)
    if key is None:
        return None
    return db.scalar(select(WebhookEndpoint).where(WebhookEndpoint.app_id == app.id,
                                                   WebhookEndpoint.id == key))


def create_endpoint(db: Session, box: SecretBox, app: App,
                    fields: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret in plain text (to show once)."""
    if len(endpoints_of_app(db, app)) >= MAX_ENDPOINTS_PER_APP:
        raise InvalidSetting(f"An app can have at most {MAX_ENDPOINTS_PER_APP} webhook "
                             "endpoints.")
    secret = new_secret()
    endpoint = WebhookEndpoint(app_id=app.id, url=fields["url"], events=fields["events"],
                               enabled=fields.get("enabled", True),
                               secret_ciphertext=box.encrypt(secret))
    db.add(endpoint)
    db.flush()
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, fields: dict[str, Any]) -> list[str]:
    """Apply the changed fields; enabling clears the failure record. Returns their names."""
    changed = [name for name, value in fields.items() if getattr(endpoint, name) != value]
    for name in changed:
        setattr(endpoint, name, fields[name])
    if "enabled" in changed:
        endpoint.disabled_reason = None
        endpoint.disabled_at = None if endpoint.enabled else utcnow()
        if endpoint.enabled:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            _resume_held(endpoint)
    return changed


def _resume_held(endpoint: WebhookEndpoint) -> None:
    """Deliveries held while the endpoint was off go now, with a fresh retry window
    (the time it spent disabled does not count against them)."""
    session = object_session(endpoint)
    if session is None:
        return
    now = utcnow()
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint.id,
        WebhookDelivery.status == DeliveryStatus.PENDING,
    ).values(next_attempt_at=now, retry_from=now))


def rotate_endpoint_secret(endpoint: WebhookEndpoint, box: SecretBox,
                           grace_seconds: int = DEFAULT_GRACE_SECONDS) -> str:
    """A new secret. For ``grace_seconds`` the old one signs too (a second ``v1``);
    0 drops it at once (a leaked secret)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidSetting(f"grace_seconds must be from 0 to {MAX_GRACE_SECONDS}.")
    now = utcnow()
    secret = new_secret()
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext if grace_seconds else None
    endpoint.previous_secret_valid_until = (now + dt.timedelta(seconds=grace_seconds)
                                            if grace_seconds else None)
    endpoint.secret_ciphertext = box.encrypt(secret)
    endpoint.secret_rotated_at = now
    return secret


def previous_valid_until(endpoint: WebhookEndpoint,
                         now: dt.datetime | None = None) -> dt.datetime | None:
    """Until when the rotated-out secret still signs, or None."""
    until = endpoint.previous_secret_valid_until
    if not endpoint.previous_secret_ciphertext or until is None:
        return None
    until = as_utc(until)
    return until if until > (now or utcnow()) else None


def secret_as_dict(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return {"secret": secret, "previous_valid_until": _iso(previous_valid_until(endpoint))}


def reveal_endpoint_secret(endpoint: WebhookEndpoint, box: SecretBox) -> str:
    return box.decrypt(endpoint.secret_ciphertext)


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def endpoint_as_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The webhook object of the management API (never the secret)."""
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }


def attempts_of(db: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    found: dict[uuid.UUID, list] = {}
    if delivery_ids:
        for attempt in db.scalars(select(WebhookAttempt)
                                  .where(WebhookAttempt.delivery_id.in_(delivery_ids))
                                  .order_by(WebhookAttempt.at, WebhookAttempt.id)):
            found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def deliveries_page(db: Session, endpoint: WebhookEndpoint, *, limit: int = 50,
                    cursor: str | None = None) -> tuple[list[tuple], str | None]:
    """(delivery, event, attempts) rows, newest first, and the next page's cursor."""
    statement = (select(WebhookDelivery, WebhookEvent)
                 .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                 .where(WebhookDelivery.endpoint_id == endpoint.id))
    if cursor:
        created, last_id = decode_cursor(cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(created), uuid.UUID(last_id))
        except (TypeError, ValueError) as exc:
            raise BadCursor(cursor) from exc
        statement = statement.where(
            (WebhookDelivery.created_at < after[0])
            | ((WebhookDelivery.created_at == after[0]) & (WebhookDelivery.id < after[1])))
    limit = max(1, min(limit, MAX_PAGE))
    rows = db.execute(statement.order_by(WebhookDelivery.created_at.desc(),
                                         WebhookDelivery.id.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(as_utc(last.created_at).isoformat(), str(last.id))
    rows = rows[:limit]
    attempts = attempts_of(db, [delivery.id for delivery, _ in rows])
    return [(d, e, attempts.get(d.id, [])) for d, e in rows], next_cursor


def overdue(endpoint: WebhookEndpoint, rows: list[tuple], now: dt.datetime | None = None) -> bool:
    """Whether a pending delivery of an enabled endpoint has been due for over
    ``OVERDUE`` (a claimed one is pushed a lease ahead, so it is not)."""
    if not endpoint.enabled:
        return False
    limit = (now or utcnow()) - OVERDUE
    return any(delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at
               is not None and as_utc(delivery.next_attempt_at) < limit
               for delivery, *_ in rows)


def delivery_of_endpoint(db: Session, endpoint: WebhookEndpoint,
                         delivery_id: str) -> WebhookDelivery | None:
    key = _uuid(delivery_id)
    if key is None:
        return None
    return db.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                   WebhookDelivery.id == key))


def resend(request, delivery: WebhookDelivery) -> None:
    """Send the same event (same id) again now, with a fresh retry window."""
    now = utcnow()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.retry_from = now
    kick_after_commit(request)


def attempt_as_dict(attempt: WebhookAttempt) -> dict[str, Any]:
    return {"at": _iso(attempt.at), "ok": attempt.ok, "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms, "response_snippet": attempt.response_snippet,
            "error": attempt.error}


def delivery_as_dict(delivery: WebhookDelivery, event: WebhookEvent,
                     attempts: list[WebhookAttempt], *, held: bool = False) -> dict[str, Any]:
    """The API's delivery; ``held`` (its endpoint is disabled): no next attempt is due."""
    return {
        "id": str(delivery.id),
        "event": {"id": str(event.id), "type": event.type,
                  "created_at": _iso(event.created_at), "data": event.data},
        "status": str(delivery.status),
        "attempts": [attempt_as_dict(a) for a in attempts],
        "next_attempt_at": _iso(delivery.next_attempt_at)
        if delivery.status == DeliveryStatus.PENDING and not held else None,
        "created_at": _iso(delivery.created_at),
        "delivered_at": _iso(delivery.delivered_at),
    }
