"""Test data made through the same services the product uses."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from saas.apikeys.services import create_api_key
from saas.apps.services import create_app
from saas.db import utcnow
from saas.tenants.models import Member, Role
from saas.tenants.services import sign_up

DEFAULT_PASSWORD = "correct horse battery staple"


def make_member(db, passwords, *, email: str | None = None, tenant_name: str = "Acme",
                password: str = DEFAULT_PASSWORD, verified: bool = True):
    """A tenant's owner; with a verified email unless ``verified=False``
    (sign-up itself leaves the email unverified until the mailed link)."""
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    member = sign_up(db, passwords, tenant_name=tenant_name, email=email, password=password)
    if verified:
        member.email_verified_at = utcnow()
    db.flush()
    return member


def make_app(db, secret_box, tenant_id, **kwargs):
    kwargs.setdefault("name", "Example app")
    kwargs.setdefault("redirect_uris", ["https://app.example.com/callback"])
    kwargs.setdefault("allow_private", True)
    app, secrets = create_app(db, secret_box, tenant_id=tenant_id, **kwargs)
    db.flush()
    return app, secrets


def make_api_key(db, tenant_id, name: str = "automation"):
    """A key of the tenant created by its first owner (keys act with their creator's role)."""
    owner = db.scalar(select(Member).where(Member.tenant_id == tenant_id, Member.role == Role.OWNER)
                      .order_by(Member.created_at).limit(1))
    return create_api_key(db, tenant_id, name, created_by_id=owner.id)
