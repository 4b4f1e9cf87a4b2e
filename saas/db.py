"""Database: declarative base with named constraints, engine, ``request.db``.

The login path's endpoints (authorize, callback, token, custom-token, ``/me``,
userinfo) touch Redis only: PostgreSQL is at most read there, on an app-cache
miss or for a user's stored row, and never written. They run without
pyramid_tm (``transaction_wanted``): beginning and committing an empty
transaction was ≈ 5 % of their CPU. Their ``request.db`` is a plain session
whose transaction is rolled back when the request ends, so a write there
could never be committed by mistake.

One session per request, joined to the request's transaction (pyramid_tm) and
closed when the request ends. Nothing here keeps a module-global session.

``request.read_db`` serves the dashboard's and the API's lists and charts: a
read-only session on the replica of ``sqlalchemy.read_url``
(``DATABASE_READ_URL``) when one is set, else ``request.db`` itself. A replica
lags its primary a little, so nothing that is read and then changed goes there.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import zope.sqlalchemy
from pyramid_tm import is_tm_active
from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL, plain JSON (text) on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """``timestamptz`` that always reads back as an aware UTC datetime.

    SQLite (development) drops the zone and PostgreSQL answers in the
    session's zone; this one type makes both UTC, so no caller patches times.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN, so SAVEPOINTs work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # IMMEDIATE: take the write lock at the start, waiting up to the busy
    # timeout (5 s) for another writer (the development server's embedded
    # sync thread, say). A plain BEGIN takes it at the first write, and a
    # transaction that read first and then finds another writer fails at
    # once with "database is locked" — SQLite cannot wait there without
    # risking a deadlock — which the service answers with a 503.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# Give up on an unreachable server instead of hanging a worker: connecting
# within 5 s, and a connection whose sent data stays unacknowledged for 10 s
# (a dead host, a cut network) is dropped by the kernel (TCP_USER_TIMEOUT).
# A server that is alive but stuck still holds a request until gunicorn's
# worker timeout; docs/operations.md says so.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {"connect_timeout": 5, "tcp_user_timeout": 10_000}


# The replica's sessions refuse writes even where the server would take them
# (a replica URL pointed at a primary by mistake, the tests' same database).
READ_ONLY_CONNECT_ARGS: dict[str, Any] = {
    **POSTGRES_CONNECT_ARGS, "options": "-c default_transaction_read_only=on"}


def engine_from_settings(settings, *, read_replica: bool = False) -> Engine:
    """The primary's engine, or with ``read_replica`` the read-only one of
    ``sqlalchemy.read_url``."""
    url = settings["sqlalchemy.read_url" if read_replica else "sqlalchemy.url"]
    connect_args = READ_ONLY_CONNECT_ARGS if read_replica else POSTGRES_CONNECT_ARGS
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "connect_args": connect_args}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"check_same_thread": False}}
    # A failed statement's message never carries its values into a log: they
    # may be a password hash, an address, a sealed secret.
    engine = create_engine(url, hide_parameters=True, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


_NO_TRANSACTION = re.compile(
    r"/v1/apps/[^/]+/(?:authorize|callback|token|login/custom-token|me|userinfo)\Z")


def transaction_wanted(request) -> bool:
    """pyramid_tm's ``tm.activate_hook``: every request but the login path's.

    Matched on the raw WSGI path: this runs before ``saas.request_text``
    refuses a path that is not UTF-8, which ``request.path_info`` would raise on.
    """
    return _NO_TRANSACTION.match(request.environ.get("PATH_INFO", "")) is None


def retry_attempts(request) -> int | None:
    """pyramid_retry's ``retry.activate_hook``: one attempt where no transaction
    runs (a retry exists to replay a transaction PostgreSQL refused), so the
    login path's requests skip copying their body aside for a replay."""
    return None if transaction_wanted(request) else 1


def _request_db(request) -> Session:
    session = request.registry["saas.db_sessionmaker"]()
    if is_tm_active(request):
        zope.sqlalchemy.register(session, transaction_manager=request.tm)

    def cleanup(_request) -> None:
        session.close()

    request.add_finished_callback(cleanup)
    return session


def read_sessionmaker(registry) -> sessionmaker[Session]:
    """Sessions for lists and charts: the replica's, else the primary's."""
    return registry.get("saas.db_read_sessionmaker") or registry["saas.db_sessionmaker"]


def _request_read_db(request) -> Session:
    if request.registry.get("saas.db_read_sessionmaker") is None:
        return request.db
    session = request.registry["saas.db_read_sessionmaker"]()

    def cleanup(_request) -> None:
        session.close()  # rolls back the read-only transaction

    request.add_finished_callback(cleanup)
    return session


def includeme(config) -> None:
    registry = config.registry
    if "saas.db_sessionmaker" not in registry:
        registry["saas.db_engine"] = engine_from_settings(registry.settings)
        registry["saas.db_sessionmaker"] = session_factory(registry["saas.db_engine"])
    if registry.settings.get("sqlalchemy.read_url") and \
            "saas.db_read_sessionmaker" not in registry:
        registry["saas.db_read_engine"] = engine_from_settings(registry.settings,
                                                               read_replica=True)
        registry["saas.db_read_sessionmaker"] = session_factory(registry["saas.db_read_engine"])
    config.add_request_method(_request_db, "db", reify=True)
    config.add_request_method(_request_read_db, "read_db", reify=True)
