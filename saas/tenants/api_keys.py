"""A tenant's API keys as the dashboard shows them: list, find, revoke.

Issuing and checking keys is ``saas.apikeys.services``; these helpers only
read and revoke within one tenant.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apikeys.models import ApiKey
from saas.db import utcnow


def keys_of_tenant(db: Session, tenant_id: uuid.UUID) -> list[ApiKey]:
    """Live keys first (newest first), then revoked ones."""
    return list(db.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
    ))


def key_of_tenant(db: Session, tenant_id: uuid.UUID, key_id: str) -> ApiKey | None:
    """The key with this id if it belongs to the tenant; never another's."""
    try:
        key = uuid.UUID(key_id)
    except ValueError:
        return None
    return db.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key))


def revoke_api_key(key: ApiKey) -> bool:
    """Revoke the key at once; False if it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True
