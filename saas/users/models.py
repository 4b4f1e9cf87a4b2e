"""End users of tenants' apps: one row per (app, external id)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from saas.db import Base, utcnow


def end_user_id(app_internal_id: uuid.UUID, external_id: str) -> uuid.UUID:
    """Deterministic id: the web tier knows it without reading Postgres."""
    return uuid.uuid5(app_internal_id, external_id)


class EndUser(Base):
    __tablename__ = "end_users"
    __table_args__ = (
        # Deliberately no index on last_login_at: every login changes it, and
        # without an index the sync's updates stay HOT (migration 0005).
        UniqueConstraint("app_id", "external_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    # The plain merged objects; the per-field versions (server login times in
    # epoch milliseconds) that make merges order-independent live beside them.
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    custom_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    profile_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_login_at: Mapped[dt.datetime | None]
