"""Audit events (docs/management-api.md, audit log): one row per event, the id is the
idempotency key.

On PostgreSQL the table is partitioned by month of ``at`` (migration 0008,
``saas.audit.partitions``), so its key is ``(at, id)``: a partitioned table's
unique keys must hold the partition key. A row's time never changes, so the
id alone still identifies it. SQLite keeps one plain table keyed by ``id``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Enum, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from saas.audit.types import Outcome
from saas.db import Base, new_uuid, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # Time first: the sync's inserts land at the right edge of the index.
        PrimaryKeyConstraint("at", "id"),
        Index("ix_audit_events_app_id_at", "app_id", "at"),
        Index("ix_audit_events_tenant_id_at", "tenant_id", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(default=new_uuid)
    # No foreign keys: the log outlives deleted apps and users.
    tenant_id: Mapped[uuid.UUID | None]
    app_id: Mapped[str | None] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[Outcome] = mapped_column(
        Enum(Outcome, name="audit_outcome", native_enum=False, length=16,
             values_callable=lambda outcomes: [o.value for o in outcomes])
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None]
    external_id: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
