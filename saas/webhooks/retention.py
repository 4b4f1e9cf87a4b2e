"""Forgetting settled webhook events (the delivery log keeps ``retention_days``)
and rotated-out webhook secrets past their grace period."""

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


def purge_settled_events(session: Session, now: dt.datetime, retention_days: int) -> int:
    """Delete events older than the retention with no pending delivery left.

    Their deliveries and attempts go with them (ON DELETE CASCADE). An event
    still pending (a disabled endpoint holds it) is kept whatever its age.
    """
    cutoff = now - dt.timedelta(days=retention_days)
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
