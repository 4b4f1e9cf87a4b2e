"""``/me``'s read of the synced user row, kept cheap (DESIGN §2: the hot path
writes nothing to PostgreSQL; ``/me`` reads one row).

One autocommit connection per web thread, kept open: no ORM session, no
transaction manager, no pool checkout and its pre-ping round trip per
request, which together were two thirds of ``/me``'s own CPU. A connection
that fails is dropped, the request answers from the pending overlay, and the
next one reconnects.
"""

from __future__ import annotations

import logging
import threading
import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import InterfaceError, OperationalError

from saas.users.models import EndUser

log = logging.getLogger(__name__)

_STORED_USER = select(
    EndUser.custom, EndUser.profile, EndUser.custom_versions, EndUser.profile_versions,
    EndUser.created_at, EndUser.last_login_at,
).where(EndUser.id == bindparam("user_id"))


class StoredUsers:
    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, engine: Engine) -> Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated \
                or connection.engine is not engine:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except Exception as exc:  # it is broken already: forget it
                log.debug("/me: closing a failed connection: %s", exc.__class__.__name__)

    def read(self, request, user_id: str) -> Row | None:
        """The stored row, or None when there is none or PostgreSQL does not answer."""
        # Where the request's sessions read: the engine (a test binds its connection).
        bind = request.registry["saas.db_sessionmaker"].kw["bind"]
        params = {"user_id": uuid.UUID(user_id)}
        try:
            if not isinstance(bind, Engine):
                return bind.execute(_STORED_USER, params).first()
            return self._connection(bind).execute(_STORED_USER, params).first()
        except (OperationalError, InterfaceError):
            log.warning("/me: database unavailable, answering from the pending overlay")
            self._drop()
            return None


def includeme(config) -> None:
    config.registry["saas.stored_users"] = StoredUsers()
