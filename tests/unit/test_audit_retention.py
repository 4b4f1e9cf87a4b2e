"""Audit retention on SQLite (development): no partitions, expired rows deleted
by the same beat task that keeps PostgreSQL's partitions."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.services import record_event
from saas.db import engine_from_settings, utcnow
from saas.tasks import TaskName, make_celery, send
from tests.conftest import alembic_config


def test_the_task_deletes_expired_rows_on_sqlite(tmp_path, app_settings):
    url = f"sqlite:///{tmp_path / 'dev.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    settings = {**app_settings, "sqlalchemy.url": url, "saas.audit.retention_days": "30"}
    engine = engine_from_settings(settings)
    now = utcnow()
    with Session(engine) as session:
        for days in (45, 31, 29, 0):
            event = record_event(session, "app.updated", app_id="dev00001")
            event.at = now - dt.timedelta(days=days)
        session.commit()
    app = make_celery(settings, set_as_current=False)
    try:
        counts = send(app, TaskName.MAINTAIN_AUDIT).get(timeout=5)
    finally:
        app.dispose_engine()
    with Session(engine) as session:
        left = session.scalars(select(AuditEvent.at).order_by(AuditEvent.at)).all()
    engine.dispose()
    assert counts["partitioned"] is False and counts["rows_deleted"] == 2
    assert [round((now - at) / dt.timedelta(days=1)) for at in left] == [29, 0]
