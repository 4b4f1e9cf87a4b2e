"""What a dashboard account keeps beside its password: single-use mail links
and second factors. Every secret is stored hashed or encrypted."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Enum, ForeignKey, Integer, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from saas.db import Base, new_uuid, utcnow


class LinkPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"


class AccountLink(Base):
    """A single-use link mailed to a member; only the token's SHA-256 is kept."""

    __tablename__ = "account_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[LinkPurpose] = mapped_column(
        Enum(LinkPurpose, name="link_purpose", native_enum=False, length=32,
             values_callable=lambda kinds: [k.value for k in kinds])
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # change_email: the address being verified (normalised).
    new_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class TotpFactor(Base):
    """A member's TOTP authenticator (RFC 6238); the seed is encrypted at rest."""

    __tablename__ = "totp_factors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    # None while enrolment waits for the first correct code.
    confirmed_at: Mapped[dt.datetime | None]
    # The last time step accepted: a code is never accepted twice.
    last_used_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class RecoveryCode(Base):
    """One of a member's ten single-use recovery codes, stored as a hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Passkey(Base):
    """A WebAuthn credential of a member (platform or roaming authenticator)."""

    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transports: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_used_at: Mapped[dt.datetime | None]
