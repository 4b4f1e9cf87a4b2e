"""The user as the token side answers for it: the login overlay in Redis,
completed from the synced row when the overlay does not hold everything yet
(``/me``, UserInfo and the claims of ID tokens read the same user)."""

from __future__ import annotations

import logging
import uuid

from pyramid_tm import is_tm_active
from sqlalchemy.exc import InterfaceError, OperationalError

from saas.clock import to_ms
from saas.users.models import EndUser

log = logging.getLogger(__name__)


class _Unavailable:
    """PostgreSQL did not answer."""


UNAVAILABLE = _Unavailable()


def _stored_user(request, user_id: str) -> EndUser | _Unavailable | None:
    """The synced row (``None``: not synced yet), or ``UNAVAILABLE``."""
    try:
        return request.db.get(EndUser, uuid.UUID(user_id))
    except (OperationalError, InterfaceError):
        log.warning("user profile: database unavailable, answering from the login overlay")
        if is_tm_active(request):  # /me runs without one (saas/db.py)
            request.tm.doom()
        return UNAVAILABLE


def _as_seed(stored: EndUser | None) -> dict | None:
    if stored is None:
        return None
    return {"custom": stored.custom, "profile": stored.profile,
            "custom_versions": stored.custom_versions,
            "profile_versions": stored.profile_versions,
            "created_ms": to_ms(stored.created_at), "last_login_ms": to_ms(stored.last_login_at)}


def completed_user(request, app_id: str, user_id: str, overlay: dict) -> dict:
    """The user as Redis knows it; the stored row is read (and merged into Redis
    for the next time) only while the overlay is not complete."""
    if overlay["complete"]:
        return overlay
    stored = _stored_user(request, user_id)
    if stored is UNAVAILABLE:
        return overlay  # the logins Redis remembers: the best answer without PostgreSQL
    return request.pending_merges.seed(app_id, user_id, _as_seed(stored))
