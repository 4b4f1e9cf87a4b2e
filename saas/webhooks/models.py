"""Webhook endpoints, the outbox of events, deliveries and their attempts.

An event row is written in the same transaction as the change that causes it
(``saas.webhooks.outbox``), with one delivery row per subscribed endpoint; the
workers only ever see committed rows. The event id is what receivers dedupe on.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from saas.db import Base, new_uuid, utcnow


class EventType(enum.StrEnum):
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    USER_DISABLED = "user.disabled"
    USER_DELETED = "user.deleted"
    SESSION_REVOKED = "session.revoked"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or leased by a worker until then)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # retries exhausted; "resend" makes it pending again


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    app_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    # After a rotation the old secret also signs (a second ``v1``) until then.
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_valid_until: Mapped[dt.datetime | None]
    events: Mapped[list[Any]] = mapped_column(default=list)  # EventType values
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Why the service switched it off (failing too long); None when a member did.
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failing_since: Mapped[dt.datetime | None]
    secret_rotated_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class WebhookEvent(Base):
    """One event of the outbox; ``id`` is stable across retries and resends."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_app_id_created_at", "app_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WebhookDelivery(Base):
    """One event for one endpoint: pending until a 2xx answer or the retries end."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="webhook_delivery_status", native_enum=False, length=16,
             values_callable=lambda values: [v.value for v in values]),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    # Start of the retry window (creation, or the last "resend").
    retry_from: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    delivered_at: Mapped[dt.datetime | None]


class WebhookAttempt(Base):
    """One POST of a delivery, as the dashboard's delivery log shows it."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_snippet: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(String(255))
