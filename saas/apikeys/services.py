"""A tenant's API keys for the management API: issue (the plaintext is shown once,
only a SHA-256 hash is stored), check a presented key, list, find and revoke
within one tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apikeys.models import ApiKey
from saas.crypto import hash_token, random_token
from saas.db import utcnow

KEY_PREFIX = "bk_"


def create_api_key(db: Session, tenant_id: uuid.UUID, name: str, *,
                   created_by_id: uuid.UUID) -> tuple[ApiKey, str]:
    """Returns the stored key and the plaintext, which is never stored.

    The key belongs to its creator (a member of the tenant): it acts with
    their current role and stops working when they leave.
    """
    plaintext = KEY_PREFIX + random_token(32)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name.strip()[:200] or "API key",
        prefix=plaintext[:10],
        key_hash=hash_token(plaintext),
        created_by_id=created_by_id,
    )
    db.add(key)
    db.flush()
    return key, plaintext


def find_active_key(db: Session, plaintext: str) -> ApiKey | None:
    """The live key for a presented value; its last-used time is refreshed."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
        return None
    key = db.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_token(plaintext), ApiKey.revoked_at.is_(None))
    )
    if key is not None:
        key.last_used_at = utcnow()
    return key


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


def revoke_keys_created_by(db: Session, member_id: uuid.UUID) -> list[ApiKey]:
    """Revoke the live keys a (departing) member created; returns them."""
    keys = list(db.scalars(select(ApiKey).where(
        ApiKey.created_by_id == member_id, ApiKey.revoked_at.is_(None))))
    for key in keys:
        key.revoked_at = utcnow()
    return keys


def revoke_api_key(key: ApiKey) -> bool:
    """Revoke the key at once; False if it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True
