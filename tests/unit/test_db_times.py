"""Stored times read back aware, in UTC, from SQLite and PostgreSQL (``saas.db.UTCDateTime``)."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import create_engine, literal, select, text
from sqlalchemy.orm import Session

from saas.db import UTCDateTime, engine_from_settings
from saas.passwords import Passwords
from saas.tenants.models import Tenant
from saas.tenants.services import sign_up
from tests.conftest import alembic_config

WRITTEN = dt.datetime(2026, 3, 10, 9, 30, 5, 123456, tzinfo=dt.UTC)


def test_sqlite_drops_the_zone_and_the_type_puts_utc_back():
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        read = connection.execute(select(literal(WRITTEN, UTCDateTime()))).scalar_one()
    assert read == WRITTEN and read.tzinfo is dt.UTC


def test_postgres_answers_in_the_sessions_zone_and_the_type_shows_utc(db):
    db.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
    read = db.execute(select(literal(WRITTEN, UTCDateTime()))).scalar_one()
    assert read == WRITTEN and read.tzinfo is dt.UTC


def test_model_timestamps_come_back_aware_from_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    engine = engine_from_settings({"sqlalchemy.url": url})
    with Session(engine) as session:
        sign_up(session, Passwords(), tenant_name="Dev", email="dev@example.com",
                password="development password")
        session.commit()
    with Session(engine) as session:
        created = session.scalars(select(Tenant.created_at)).one()
    assert created.tzinfo is dt.UTC
    assert created <= dt.datetime.now(dt.UTC)  # comparable: a naive time would raise
