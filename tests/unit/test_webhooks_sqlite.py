"""The development database (SQLite): the generic sync path stages webhook events
once, and the delivery worker sends them, as on PostgreSQL."""

from __future__ import annotations

import uuid

from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saas.apps.services import create_app
from saas.crypto import SecretBox
from saas.db import engine_from_settings
from saas.passwords import Passwords
from saas.sync.parse import parse_entry
from saas.sync.writer import write_batch
from saas.tenants.services import sign_up
from saas.webhooks.delivery import Policy, deliver_due
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from saas.webhooks.verify import verify_webhook
from tests.conftest import alembic_config
from tests.functional.test_webhooks_support import running_receiver
from tests.sync_helpers import as_read, login_entry


def test_generic_path_stages_and_delivers_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dev.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    engine = engine_from_settings({"sqlalchemy.url": url})
    box = SecretBox("d" * 40)
    with running_receiver() as receiver:
        with Session(engine, expire_on_commit=False) as session:
            member = sign_up(session, Passwords(), tenant_name="Dev", email="dev@example.com",
                             password="development password")
            app, _ = create_app(session, box, tenant_id=member.tenant_id, name="Dev")
            _endpoint, secret = create_endpoint(session, box, app, {
                "url": receiver.url, "events": ["user.created", "login.succeeded"]})
            session.commit()
        events = [parse_entry("1-0", as_read(login_entry(
            app, "ann", 1000, custom={"plan": "pro"}, audit_id=str(uuid.UUID(int=7)))))]
        factory = sessionmaker(engine, expire_on_commit=False)
        for _ in range(2):  # a batch applied twice stages nothing twice
            with factory() as session, session.begin():
                write_batch(session, events)
        with factory() as session:
            staged = {e.type: e for e in session.scalars(select(WebhookEvent))}
            assert sorted(staged) == ["login.succeeded", "user.created"]
            assert staged["login.succeeded"].id == uuid.UUID(int=7)
            assert staged["user.created"].data["custom"] == {"plan": "pro"}
        policy = Policy(allow_private=True, timeout=2)
        assert deliver_due(factory, box, policy) == {"delivered": 2, "failed": 0}
        received = {verify_webhook(r.body, r.headers["Bridgekeeper-Signature"], secret)["type"]
                    for r in receiver.requests}
        assert received == {"user.created", "login.succeeded"}
        with factory() as session:
            assert {d.status for d in session.scalars(select(WebhookDelivery))} == {
                DeliveryStatus.DELIVERED}
    engine.dispose()
