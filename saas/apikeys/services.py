"""Issuing and checking API keys: shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apikeys.models import ApiKey
from saas.crypto import hash_token, random_token
from saas.db import utcnow

KEY_PREFIX = "bk_"


def create_api_key(db: Session, tenant_id: uuid.UUID, name: str) -> tuple[ApiKey, str]:
    """Returns the stored key and the plaintext, which is never stored."""
    plaintext = KEY_PREFIX + random_token(32)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name.strip()[:200] or "API key",
        prefix=plaintext[:10],
        key_hash=hash_token(plaintext),
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
