"""The audit log's query plans before and after migration 0008 (docs/partitions.md).

    .venv/bin/python -m bench.audit_plans [ROWS]

Creates a scratch database (``TEST_DATABASE_ADMIN_URL``, default the local
``postgres``), migrates it to 0007, fills ``audit_events`` with ROWS rows
(default 1,000,000) over 13 months, 200 apps and 50 tenants, prints the plans
of the sync's insert and the dashboard's and API's main queries, times
``upgrade 0008``, prints the plans again, and drops the database.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import uuid

import psycopg
from alembic import command
from alembic.config import Config

ADMIN = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
APP, TENANT = "app00007", "00000000-0000-0000-0000-000000000007"

FILL = """
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, reason, at, details)
SELECT gen_random_uuid(),
       ('00000000-0000-0000-0000-' || lpad((n %% 50)::text, 12, '0'))::uuid,
       'app' || lpad((n %% 200)::text, 5, '0'),
       (ARRAY['login.started', 'login.succeeded', 'token.issued', 'login.failed'])[n %% 4 + 1],
       CASE WHEN n %% 4 = 3 THEN 'failure' ELSE 'success' END,
       CASE WHEN n %% 4 = 3 THEN 'token_expired' END,
       %(now)s - (n::float / %(rows)s) * interval '395 days', '{}'
FROM generate_series(1, %(rows)s) n
"""
STAGING_TABLE = """
CREATE TEMP TABLE bk_sync_audit (
    id uuid, tenant_id uuid, app_id text, type text, outcome text, reason text,
    user_id uuid, external_id text, ip text, user_agent text, request_id text,
    at_ms bigint, details jsonb)
"""
STAGE = """
INSERT INTO bk_sync_audit (id, tenant_id, app_id, type, outcome, at_ms, details)
SELECT gen_random_uuid(), %(tenant)s::uuid, %(app)s, 'login.succeeded', 'success',
       (extract(epoch FROM %(now)s::timestamptz) * 1000)::bigint + n, '{}'
FROM generate_series(1, 2000) n
"""
SYNC_INSERT = """
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, reason, user_id,
                          external_id, ip, user_agent, request_id, at, details)
SELECT id, tenant_id, app_id, type, outcome, reason, user_id, external_id, ip,
       user_agent, request_id, timestamptz 'epoch' + at_ms * interval '1 millisecond', details
FROM bk_sync_audit ON CONFLICT ({target}) DO NOTHING
"""
QUERIES = {
    "An app's events of the last 24 h, first page (list_events, since)":
        "SELECT * FROM audit_events WHERE app_id = %(app)s AND at >= %(day_ago)s "
        "ORDER BY at DESC, id DESC LIMIT 51",
    "An app's events, a later page, no time filter (list_events, cursor)":
        "SELECT * FROM audit_events WHERE app_id = %(app)s AND (at < %(cursor)s OR "
        "(at = %(cursor)s AND id < %(cursor_id)s)) ORDER BY at DESC, id DESC LIMIT 51",
    "An app's logins of the last 30 days (login_stats, the charts)":
        "SELECT at, type, reason FROM audit_events WHERE app_id = %(app)s "
        "AND at >= %(month_ago)s AND type IN ('login.succeeded', 'custom_token.succeeded', "
        "'login.failed', 'custom_token.failed')",
    "A tenant's events of the last 24 h (ix_audit_events_tenant_id_at)":
        "SELECT * FROM audit_events WHERE tenant_id = %(tenant)s AND at >= %(day_ago)s "
        "ORDER BY at DESC LIMIT 50",
}
PARAMS = {"app": APP, "tenant": TENANT, "now": NOW, "day_ago": NOW - dt.timedelta(days=1),
          "month_ago": NOW - dt.timedelta(days=30), "cursor": NOW - dt.timedelta(days=3),
          "cursor_id": str(uuid.UUID(int=2**127))}
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) "


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location",
                           os.path.join(os.path.dirname(os.path.dirname(__file__)), "alembic"))
    config.attributes["sqlalchemy.url"] = url
    return config


def show(connection: psycopg.Connection, title: str, sql: str) -> None:
    plan = "\n".join(row[0] for row in connection.execute(EXPLAIN + sql, PARAMS))
    print(f"#### {title}\n\n```\n{plan}\n```\n")


def plans(url: str, target: str) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("ANALYZE audit_events")
        for title, sql in QUERIES.items():
            show(connection, title, sql)
        connection.execute(STAGING_TABLE)
        connection.execute(STAGE, PARAMS)
        show(connection, f"The sync's insert of a 2,000-row batch (ON CONFLICT ({target}))",
             SYNC_INSERT.format(target=target))
        connection.rollback()


def main(rows: int) -> None:
    name = f"bk_plans_{uuid.uuid4().hex[:8]}"
    base = ADMIN.rpartition("/")[0]
    url = f"{base}/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        config = alembic_config(url.replace("postgresql://", "postgresql+psycopg://", 1))
        command.upgrade(config, "0007")
        with psycopg.connect(url) as connection:
            connection.execute(FILL, {"now": NOW, "rows": rows})
        print(f"### Before (0007, one table, {rows:,} rows)\n")
        plans(url, "id")
        started = time.perf_counter()
        command.upgrade(config, "0008")
        print(f"### After (0008, monthly partitions)\n\nupgrade 0008 took "
              f"{time.perf_counter() - started:.1f} s for {rows:,} rows\n")
        plans(url, "at, id")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
