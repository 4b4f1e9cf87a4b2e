"""Apps, their shared secrets and their token-signing keys."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from saas.db import Base, new_uuid, utcnow

DEFAULT_ACCESS_TOKEN_TTL = 900
DEFAULT_REFRESH_TOKEN_TTL = 30 * 24 * 3600


class SecretKind(enum.StrEnum):
    """The HS256 secrets every app has, encrypted at rest (the tenant signs with them)."""

    CUSTOM_AUTH = "custom_auth"
    CUSTOM_TOKEN = "custom_token"


class ClientType(enum.StrEnum):
    """OpenID Connect client types (docs/oidc.md): a confidential client
    authenticates at the token endpoint with a client secret."""

    PUBLIC = "public"
    CONFIDENTIAL = "confidential"


CLIENT_SECRET_KIND = "client_secret"  # the secret kind's name in URLs and API answers


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (
        CheckConstraint(
            "access_token_ttl BETWEEN 60 AND 3600", name="access_token_ttl_range"
        ),
        CheckConstraint("refresh_token_ttl >= 60", name="refresh_token_ttl_min"),
        CheckConstraint("client_type IN ('public', 'confidential')", name="client_type_known"),
    )

    # Internal id: the uuid5 namespace of the app's end users.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # Public id: 8 chars [a-z0-9], in every URL of the login protocol.
    app_id: Mapped[str] = mapped_column(String(8), unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    custom_auth_endpoint: Mapped[str | None] = mapped_column(String(2048))
    redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    backchannel: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    custom_token_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0"
    )
    require_bound_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0"
    )
    access_token_ttl: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_ACCESS_TOKEN_TTL, server_default=str(DEFAULT_ACCESS_TOKEN_TTL)
    )
    refresh_token_ttl: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_REFRESH_TOKEN_TTL, server_default=str(DEFAULT_REFRESH_TOKEN_TTL)
    )
    hosted_form: Mapped[dict[str, Any] | None]
    restart_url: Mapped[str | None] = mapped_column(String(2048))
    # OpenID Connect (docs/oidc.md).
    client_type: Mapped[str] = mapped_column(
        String(16), default=ClientType.PUBLIC.value, server_default=ClientType.PUBLIC.value
    )
    pkce_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    post_logout_redirect_uris: Mapped[list[Any]] = mapped_column(
        default=list, server_default="[]"
    )
    oidc_custom_claim: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    secrets: Mapped[list[AppSecret]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )
    signing_keys: Mapped[list[SigningKey]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )
    client_secret: Mapped[ClientSecret | None] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )

    def secret(self, kind: SecretKind) -> AppSecret:
        return next(s for s in self.secrets if s.kind == kind)


class AppSecret(Base):
    """One HS256 secret of an app, encrypted at rest, with its predecessor's grace."""

    __tablename__ = "app_secrets"
    __table_args__ = (UniqueConstraint("app_id", "kind"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    kind: Mapped[SecretKind] = mapped_column(
        Enum(SecretKind, name="secret_kind", native_enum=False, length=16,
             values_callable=lambda kinds: [k.value for k in kinds])
    )
    current_ciphertext: Mapped[str] = mapped_column(Text)
    previous_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_valid_until: Mapped[dt.datetime | None]
    rotated_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())

    app: Mapped[App] = relationship(back_populates="secrets")


class ClientSecret(Base):
    """A confidential client's secret: only its SHA-256 is kept (shown once,
    never read back), with its predecessor's hash during a rotation's grace."""

    __tablename__ = "client_secrets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    app_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), unique=True
    )
    current_hash: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    previous_valid_until: Mapped[dt.datetime | None]
    rotated_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())

    app: Mapped[App] = relationship(back_populates="client_secret")


class SigningKey(Base):
    """An ES256 key pair that signs an app's access tokens."""

    __tablename__ = "signing_keys"

    # The RFC 7638 thumbprint of the public key, used as the JWT ``kid``.
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    private_key_ciphertext: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Set when a newer key takes over; the key stays in the JWKS until
    # ``published_until`` so tokens it signed still verify.
    retired_at: Mapped[dt.datetime | None]
    published_until: Mapped[dt.datetime | None]

    app: Mapped[App] = relationship(back_populates="signing_keys")
