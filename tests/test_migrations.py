"""Migrations are the schema: up, down and up again on PostgreSQL; up on SQLite;
and the models match the migrations (autogenerate finds nothing)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
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
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
