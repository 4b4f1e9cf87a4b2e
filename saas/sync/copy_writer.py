"""The PostgreSQL fast path of the batch writer: ``COPY`` into temporary tables,
then one set-based statement per table.

The batch's folded user states and its audit rows are copied into temporary
tables (emptied at commit). One ``INSERT … ON CONFLICT DO UPDATE`` then creates
new users and merges existing ones field by field inside PostgreSQL
(``bk_merge_fields``, migration 0002) — the row lock of the upsert makes
concurrent workers safe, and rows are taken in id order so they cannot
deadlock. The same statement records a ``user.created`` audit row for each
user it inserted. Audit rows are inserted with ``ON CONFLICT (at, id) DO NOTHING``:
the partitioned table's key (migration 0008); a re-delivered row has the same
time, so it still adds nothing.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from saas.sync.merge import UserState
from saas.sync.webhook_events import kick_if_staged, queue_staging

# Staging tables in COPY's text format; times travel as epoch milliseconds and
# become timestamps in SQL with exact integer arithmetic.
_CREATE_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS bk_sync_users (
    id uuid, app_id uuid, external_id text, custom jsonb, profile jsonb,
    custom_versions jsonb, profile_versions jsonb, first_ms bigint, last_ms bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS bk_sync_audit (
    id uuid, tenant_id uuid, app_id text, type text, outcome text, reason text,
    user_id uuid, external_id text, ip text, user_agent text, request_id text,
    at_ms bigint, details jsonb
) ON COMMIT DELETE ROWS;
"""
_TEMP_TABLES = _CREATE_TABLES + """
-- Empty already after a commit; not after a savepoint (nested callers, tests).
DELETE FROM bk_sync_users;
DELETE FROM bk_sync_audit;
"""
# The pooled connection's info key: its staging tables exist since it connected.
_STAGING_READY = "bk_sync_staging"


def stage_on_connect(engine: Engine) -> None:
    """Give each new connection of ``engine`` (PostgreSQL) the staging tables
    once, when it connects, instead of asking for them in every batch: a
    worker's short batches (live load) paid a statement of their own for it.
    Only for engines whose transactions never nest a batch in a savepoint
    (the workers'): after one, the tables could hold rows."""
    if engine.dialect.name != "postgresql":
        return

    def create(dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(_CREATE_TABLES)
        dbapi_connection.commit()
        record.info[_STAGING_READY] = True

    event.listen(engine, "connect", create)

_UPSERT_USERS = """
WITH upserted AS (
INSERT INTO end_users AS u (id, app_id, external_id, custom, profile, custom_versions,
                            profile_versions, created_at, last_login_at)
SELECT id, app_id, external_id, custom, profile, custom_versions, profile_versions,
       timestamptz 'epoch' + first_ms * interval '1 millisecond',
       timestamptz 'epoch' + last_ms * interval '1 millisecond'
FROM bk_sync_users ORDER BY id
ON CONFLICT (id) DO UPDATE SET
    -- Usual case: the batch is newer than everything stored, so its fields win
    -- outright (||). Otherwise the per-field merge decides.
    custom = CASE WHEN excluded.created_at > u.last_login_at THEN u.custom || excluded.custom
        ELSE (bk_merge_fields(u.custom, u.custom_versions, excluded.custom,
                              excluded.custom_versions)).merged_values END,
    custom_versions = CASE WHEN excluded.created_at > u.last_login_at
        THEN u.custom_versions || excluded.custom_versions
        ELSE (bk_merge_fields(u.custom, u.custom_versions, excluded.custom,
                              excluded.custom_versions)).merged_versions END,
    profile = CASE WHEN excluded.created_at > u.last_login_at THEN u.profile || excluded.profile
        ELSE (bk_merge_fields(u.profile, u.profile_versions, excluded.profile,
                              excluded.profile_versions)).merged_values END,
    profile_versions = CASE WHEN excluded.created_at > u.last_login_at
        THEN u.profile_versions || excluded.profile_versions
        ELSE (bk_merge_fields(u.profile, u.profile_versions, excluded.profile,
                              excluded.profile_versions)).merged_versions END,
    created_at = least(u.created_at, excluded.created_at),
    last_login_at = greatest(u.last_login_at, excluded.last_login_at)
-- xmax is 0 exactly for the rows this statement inserted: the users it created.
RETURNING u.id, u.app_id, u.external_id, u.created_at, u.xmax = 0 AS inserted
)
-- One user.created audit row per user the sync creates. A batch applied again
-- finds its users existing and adds none.
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, user_id, external_id, at,
                          details)
SELECT gen_random_uuid(), apps.tenant_id, apps.app_id, 'user.created', 'success',
       upserted.id, upserted.external_id, upserted.created_at, '{}'::jsonb
FROM upserted JOIN apps ON apps.id = upserted.app_id
WHERE upserted.inserted
"""
_INSERT_AUDIT = """
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, reason, user_id,
                          external_id, ip, user_agent, request_id, at, details)
SELECT id, tenant_id, app_id, type, outcome, reason, user_id, external_id, ip,
       user_agent, request_id, timestamptz 'epoch' + at_ms * interval '1 millisecond', details
FROM bk_sync_audit ON CONFLICT (at, id) DO NOTHING
"""


# COPY text format: backslash, tab, newline and carriage return are escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _field(value: str | None) -> str:
    return _NULL if value is None else value.translate(_COPY_ESCAPES)


def _json(value: Any) -> str:
    # orjson escapes control characters itself: only backslashes need doubling.
    text = orjson.dumps(value).decode()
    return text.replace("\\", "\\\\") if "\\" in text else text


def _user_line(user_id: str, state: UserState) -> str:
    return "\t".join((
        user_id, str(state.app_uuid), _field(state.external_id),
        _json(state.custom.values), _json(state.profile.values),
        _json(state.custom.versions), _json(state.profile.versions),
        str(state.first_login_ms), str(state.last_login_ms),
    )) + "\n"


def _audit_line(record: dict[str, Any]) -> str:
    return "\t".join((
        # ids are checked UUID text (saas.sync.parse): nothing to escape.
        record["id"], record["tenant_id"] or _NULL, _field(record["app_id"]),
        _field(record["type"]), record["outcome"], _field(record["reason"]),
        record["user_id"] or _NULL, _field(record["external_id"]), _field(record["ip"]),
        _field(record["user_agent"]), _field(record["request_id"]), str(record["at_ms"]),
        _json(record["details"]),
    )) + "\n"


def copy_text(states: dict[str, UserState],
              audit: list[dict[str, Any]]) -> tuple[str, str]:
    """The batch as COPY text for the two staging tables (pure CPU work)."""
    unique = {record["id"]: record for record in audit}
    return ("".join(_user_line(user_id, state) for user_id, state in states.items()),
            "".join(map(_audit_line, unique.values())))


def _copy(cursor, table: str, text: str) -> None:
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        copy.write(text)


def write_postgres(session: Session, users: str, audit: str) -> None:
    """Database work only: staging tables, the upsert, the audit insert."""
    pooled = session.connection().connection
    connection = pooled.driver_connection
    with connection.cursor() as cursor:
        if not pooled.info.get(_STAGING_READY):
            cursor.execute(_TEMP_TABLES)
        if users:
            _copy(cursor, "bk_sync_users", users)
        if audit:
            _copy(cursor, "bk_sync_audit", audit)
    # The rest in one round trip (each round trip costs the writer thread a
    # wait for the GIL as well as the network), as prepared statements: a
    # short batch (live load) spent more of PostgreSQL's time planning these
    # statements than running them.
    with connection.cursor() as users_staging, connection.cursor() as audit_staging:
        with connection.pipeline():
            # needs both tables filled, and runs before the upsert
            queue_staging(users_staging, audit_staging)
            if users:
                connection.execute(_UPSERT_USERS, prepare=True)
            if audit:
                connection.execute(_INSERT_AUDIT, prepare=True)
        kick_if_staged(session, (users_staging, audit_staging))
