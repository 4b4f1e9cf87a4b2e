"""Forgetting settled webhook events (the delivery log keeps ``retention_days``),
deliveries held too long for a disabled endpoint, and rotated-out webhook
secrets past their grace period."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from saas.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


def give_up_held(session: Session, cutoff: dt.datetime) -> int:
    """Deliveries held for a disabled endpoint whose event is older than ``cutoff``
    are given up (``failed``): an endpoint disabled and forgotten must not keep
    every later event for ever."""
    disabled = select(WebhookEndpoint.id).where(~WebhookEndpoint.enabled)
    old = select(WebhookEvent.id).where(WebhookEvent.created_at < cutoff)
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING,
               WebhookDelivery.endpoint_id.in_(disabled), WebhookDelivery.event_id.in_(old))
        .values(status=DeliveryStatus.FAILED, next_attempt_at=None)
        .execution_options(synchronize_session=False))
    return result.rowcount


def purge_settled_events(session: Session, now: dt.datetime, retention_days: int) -> int:
    """Delete events older than the retention with no pending delivery left.

    Their deliveries and attempts go with them (ON DELETE CASCADE). Deliveries
    held for a disabled endpoint count as pending up to the retention, then are
    given up first (``give_up_held``), so their events go too. A delivery still
    being retried for an enabled endpoint keeps its event whatever its age.
    """
    cutoff = now - dt.timedelta(days=retention_days)
    give_up_held(session, cutoff)
    pending = exists(select(WebhookDelivery.id).where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status == DeliveryStatus.PENDING))
    result = session.execute(delete(WebhookEvent).where(WebhookEvent.created_at < cutoff,
                                                        ~pending))
    # Rotated-out secrets past their grace period sign nothing any more: forget them.
    session.execute(update(WebhookEndpoint)
                    .where(WebhookEndpoint.previous_secret_valid_until < now)
                    .values(previous_secret_ciphertext=None, previous_secret_valid_until=None))
    return result.rowcount
