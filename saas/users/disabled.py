"""Disabled end users, mirrored in Redis so the login path need not ask PostgreSQL.

The dashboard and the management API set and clear the flag in PostgreSQL and
here in the same request (``set_disabled``).
"""

from __future__ import annotations


def disabled_key(keys, app_id: str, user_id: str) -> str:
    """The flag's Redis key; the login path reads it on its own pipeline."""
    return keys.app(app_id, "user-disabled", user_id)


def is_disabled(request, app_id: str, user_id: str) -> bool:
    return bool(request.redis.exists(disabled_key(request.redis_keys, app_id, user_id)))


def set_disabled(client, keys, app_id: str, user_id: str, disabled: bool) -> None:
    if disabled:
        client.set(disabled_key(keys, app_id, user_id), "1")
    else:
        client.delete(disabled_key(keys, app_id, user_id))
