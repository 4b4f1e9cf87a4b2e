"""Migrations are the schema: up, down and up again on PostgreSQL; up on SQLite;
and the models match the migrations (autogenerate finds nothing)."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from saas.audit.partitions import is_partition_name, month_of, partition_name
from saas.config import database_url
from saas.models import Base
from tests.conftest import ADMIN_DSN, alembic_config

TABLES = {
    "tenants", "members", "apps", "app_secrets", "signing_keys", "api_keys", "end_users",
    "audit_events", "member_invites", "webhook_endpoints", "webhook_events",
    "webhook_deliveries", "webhook_attempts", "client_secrets", "account_links",
    "totp_factors", "recovery_codes", "passkeys",
}


@pytest.fixture
def scratch_postgres():
    name = f"bk_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = ADMIN_DSN.rpartition("/")
    yield database_url(f"{base}/{name}")
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        return {name for name in names if not is_partition_name(name)}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_postgres(scratch_postgres):
    config = alembic_config(scratch_postgres)
    command.upgrade(config, "head")
    assert _tables(scratch_postgres) == TABLES
    command.downgrade(config, "base")
    assert _tables(scratch_postgres) == set()
    command.upgrade(config, "head")
    assert _tables(scratch_postgres) == TABLES


def test_upgrade_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'bk.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    assert _tables(url) == TABLES


def test_models_match_the_migrations(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True,
            # As alembic/env.py: audit partitions are no model's tables.
            "include_name": lambda name, type_, _parents: not (
                type_ == "table" and is_partition_name(name)),
        })
        assert compare_metadata(context, Base.metadata) == []


# Rows of several months, month edges included (times in UTC).
AUDIT_TIMES = ("2024-11-03 10:00:00+00", "2025-01-31 23:59:59.999+00",
               "2025-02-01 00:00:00+00", "2025-02-14 08:30:00+00", "2026-06-30 23:00:00+00")


def _audit_rows(connection) -> dict[str, tuple[str, str]]:
    """id -> (the table holding it, its month)."""
    return {str(row[0]): (row[1], row[2]) for row in connection.exec_driver_sql(
        "SELECT id, tableoid::regclass::text, to_char(at AT TIME ZONE 'UTC', 'YYYY_MM') "
        "FROM audit_events")}


def _relkind(connection) -> str:
    return connection.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = 'audit_events'::regclass").scalar()


def test_the_audit_log_becomes_monthly_partitions_and_back(scratch_postgres):
    config = alembic_config(scratch_postgres)
    command.upgrade(config, "0007")
    engine = create_engine(scratch_postgres)
    try:
        with engine.begin() as connection:
            for at in AUDIT_TIMES:
                connection.exec_driver_sql(
                    "INSERT INTO audit_events (id, app_id, type, outcome, at, details) "
                    "VALUES (gen_random_uuid(), 'mig00001', 'login.succeeded', 'success', "
                    "%(at)s, '{}')", {"at": at})
            before = _audit_rows(connection)
        command.upgrade(config, "head")
        with engine.connect() as connection:
            after = _audit_rows(connection)
            assert _relkind(connection) == "p"
            partitions = set(connection.exec_driver_sql(
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'audit_events'::regclass").scalars())
            key = inspect(connection).get_pk_constraint("audit_events")
        # Every row kept, each in the partition of its own month.
        assert after.keys() == before.keys()
        assert all(table == f"audit_events_p{month}" for table, month in after.values())
        assert {month for _table, month in after.values()} == {
            "2024_11", "2025_01", "2025_02", "2026_06"}
        assert key["constrained_columns"] == ["at", "id"]
        assert "audit_events_default" in partitions
        this_month = month_of(dt.datetime.now(dt.UTC))
        assert {partition_name(month_of(this_month, shift)) for shift in range(4)} <= partitions

        command.downgrade(config, "0007")
        with engine.connect() as connection:
            assert _relkind(connection) == "r"
            assert set(_audit_rows(connection)) == set(before)
            assert inspect(connection).get_pk_constraint("audit_events")[
                "constrained_columns"] == ["id"]
            assert not [name for name in inspect(connection).get_table_names()
                        if is_partition_name(name)]
        command.upgrade(config, "head")
        with engine.connect() as connection:
            assert set(_audit_rows(connection)) == set(before)
    finally:
        engine.dispose()
