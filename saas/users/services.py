"""End users as tenants manage them: list, search, read, disable, delete.

PostgreSQL holds the synced rows; the login path's Redis mirrors (the disabled
flag, sessions, the pending overlay) are updated in the same request, so a
disabled user is refused at the next login without the login path reading
PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.clock import iso_utc
from saas.pagination import BadCursor, decode_cursor, encode_cursor
from saas.users.disabled import set_disabled
from saas.users.models import EndUser
from saas.users.pending import pending_key

MAX_PAGE = 200


def user_as_dict(user: EndUser) -> dict[str, Any]:
    """The user object of the management API (docs/management-api.md)."""
    return {
        "id": str(user.id),
        "external_id": user.external_id,
        "custom": user.custom,
        "profile": user.profile,
        "disabled": user.disabled,
        "created_at": iso_utc(user.created_at),
        "last_login_at": iso_utc(user.last_login_at),
    }


def list_users(db: Session, app: App, *, query: str = "", limit: int = 50,
               cursor: str | None = None) -> tuple[list[EndUser], str | None]:
    """Users of one app by external id (prefix search with ``query``), paged."""
    statement = select(EndUser).where(EndUser.app_id == app.id)
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(EndUser.external_id.like(escaped + "%", escape="\\"))
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        if not isinstance(after, str):
            raise BadCursor(cursor)
        statement = statement.where(EndUser.external_id > after)
    limit = max(1, min(limit, MAX_PAGE))
    users = list(db.scalars(statement.order_by(EndUser.external_id).limit(limit + 1)))
    next_cursor = encode_cursor(users[limit - 1].external_id) if len(users) > limit else None
    return users[:limit], next_cursor


def user_of_app(db: Session, app: App, user_id: str) -> EndUser | None:
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        return None
    return db.scalar(select(EndUser).where(EndUser.app_id == app.id, EndUser.id == key))


def set_user_disabled(request, app: App, user: EndUser, disabled: bool) -> int:
    """Set the flag here and in Redis; disabling ends the user's sessions.
    Returns how many sessions were live (0 when enabling)."""
    user.disabled = disabled
    set_disabled(request.redis, request.redis_keys, app.app_id, str(user.id), disabled)
    if disabled:
        return request.login_sessions.revoke_user(app.app_id, str(user.id))
    return 0


def revoke_sessions(request, app: App, user: EndUser) -> int:
    return request.login_sessions.revoke_user(app.app_id, str(user.id))


def delete_user(request, app: App, user: EndUser) -> int:
    """Forget the user here and in Redis; returns how many sessions were live.
    A later login creates them afresh."""
    count = request.login_sessions.revoke_user(app.app_id, str(user.id))
    request.redis.delete(pending_key(request.redis_keys, app.app_id, str(user.id)))
    set_disabled(request.redis, request.redis_keys, app.app_id, str(user.id), False)
    request.db.delete(user)
    return count
