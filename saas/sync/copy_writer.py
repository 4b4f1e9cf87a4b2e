"""The PostgreSQL fast path of the batch writer: ``COPY`` into temporary tables,
then one set-based statement per table.

The batch's folded user states and its audit rows are copied into temporary
tables (emptied at commit). One ``INSERT … ON CONFLICT DO UPDATE`` then creates
new users and merges existing ones field by field inside PostgreSQL
(``bk_merge_fields``, migration 0002) — the row lock of the upsert makes
concurrent workers safe, and rows are taken in id order so they cannot
deadlock. Audit rows are inserted with ``ON CONFLICT (id) DO NOTHING``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy.orm import Session

from saas.clock import from_ms
from saas.sync.merge import UserState

USER_COLUMNS = ("id", "app_id", "external_id", "custom", "profile", "custom_versions",
                "profile_versions", "created_at", "last_login_at")
AUDIT_COLUMNS = ("id", "tenant_id", "app_id", "type", "outcome", "reason", "user_id",
                 "external_id", "ip", "user_agent", "request_id", "at", "details")
_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS bk_sync_users
    (LIKE end_users INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS bk_sync_audit
    (LIKE audit_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
-- Empty already after a commit; not after a savepoint (nested callers, tests).
DELETE FROM bk_sync_users;
DELETE FROM bk_sync_audit;
"""
_UPSERT_USERS = """
INSERT INTO end_users AS u (id, app_id, external_id, custom, profile, custom_versions,
                            profile_versions, created_at, last_login_at)
SELECT id, app_id, external_id, custom, profile, custom_versions, profile_versions,
       created_at, last_login_at
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
"""
_INSERT_AUDIT = """
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, reason, user_id,
                          external_id, ip, user_agent, request_id, at, details)
SELECT id, tenant_id, app_id, type, outcome, reason, user_id, external_id, ip,
       user_agent, request_id, at, details
FROM bk_sync_audit ON CONFLICT (id) DO NOTHING
"""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _user_row(user_id: uuid.UUID, state: UserState) -> tuple:
    return (user_id, state.app_uuid, state.external_id, _dumps(state.custom.values),
            _dumps(state.profile.values), _dumps(state.custom.versions),
            _dumps(state.profile.versions), from_ms(state.first_login_ms),
            from_ms(state.last_login_ms))


def _audit_row(record: dict[str, Any]) -> tuple:
    return (record["id"], record["tenant_id"], record["app_id"], record["type"],
            record["outcome"], record["reason"], record["user_id"], record["external_id"],
            record["ip"], record["user_agent"], record["request_id"],
            from_ms(record["at_ms"]), _dumps(record["details"]))


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def write_postgres(session: Session, states: dict[uuid.UUID, UserState],
                   audit: list[dict[str, Any]]) -> None:
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute(_TEMP_TABLES)
        if states:
            _copy(cursor, "bk_sync_users", USER_COLUMNS,
                  (_user_row(user_id, state) for user_id, state in states.items()))
            cursor.execute(_UPSERT_USERS)
        if audit:
            unique = {record["id"]: record for record in audit}
            _copy(cursor, "bk_sync_audit", AUDIT_COLUMNS, map(_audit_row, unique.values()))
            cursor.execute(_INSERT_AUDIT)
