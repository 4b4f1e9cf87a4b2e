"""Tenants, their dashboard members and pending invitations."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Boolean, Enum, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from saas.db import Base, new_uuid, utcnow


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"


def _role_enum() -> Enum:
    return Enum(Role, name="member_role", native_enum=False, length=16,
                values_callable=lambda roles: [r.value for r in roles])


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    # An owner's rule: every member must enrol a second factor (docs/accounts.md).
    require_second_factor: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0"
    )

    members: Mapped[list[Member]] = relationship(back_populates="tenant")


class Member(Base):
    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    # Stored normalised (saas.tenants.emails); unique across the service so
    # sign-in needs no tenant.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_role_enum(), default=Role.OWNER)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_sign_in_at: Mapped[dt.datetime | None]
    # None until the member follows the link mailed to the address.
    email_verified_at: Mapped[dt.datetime | None]
    # Dashboard sessions begun before this are over (a password, email or
    # factor change signs the account's other sessions out).
    sessions_valid_after: Mapped[dt.datetime | None]

    tenant: Mapped[Tenant] = relationship(back_populates="members")


class Invite(Base):
    """A single-use invitation to join a tenant; only the token's SHA-256 is stored."""

    __tablename__ = "member_invites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(_role_enum())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]

    tenant: Mapped[Tenant] = relationship()
