"""The development database (SQLite) takes the generic sync path: same results."""

from __future__ import annotations

import uuid

from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saas.apps.services import create_app
from saas.audit.models import AuditEvent
from saas.crypto import SecretBox
from saas.db import engine_from_settings
from saas.passwords import Passwords
from saas.sync.parse import parse_entry
from saas.sync.writer import write_batch
from saas.tenants.services import sign_up
from saas.users.models import EndUser
from tests.conftest import alembic_config
from tests.sync_helpers import as_read, login_entry


def test_generic_path_merges_and_dedupes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    engine = engine_from_settings({"sqlalchemy.url": url})
    with Session(engine, expire_on_commit=False) as session:
        member = sign_up(session, Passwords(), tenant_name="Dev", email="dev@example.com",
                         password="development password")
        app, _ = create_app(session, SecretBox("d" * 40), tenant_id=member.tenant_id,
                            name="Dev")
        session.commit()
    events = [
        parse_entry(str(n), as_read(login_entry(app, "ann", ms, custom=custom,
                                                audit_id=str(uuid.UUID(int=n + 1)))))
        for n, (ms, custom) in enumerate([(2000, {"lang": "de"}), (1000, {"lang": "en",
                                                                          "plan": "pro"})])
    ]
    factory = sessionmaker(engine)
    for batch in ([events[0]], [events[1]], events):  # out of order, then again
        with factory() as session, session.begin():
            write_batch(session, batch)
    with factory() as session:
        user = session.scalar(select(EndUser).where(EndUser.external_id == "ann"))
        assert user.custom == {"lang": "de", "plan": "pro"}
        assert sorted(session.scalars(select(AuditEvent.type))) == [
            "login.succeeded", "login.succeeded", "user.created"]
    engine.dispose()
