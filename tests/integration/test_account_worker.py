"""A real Celery worker carries out the sign-ups and reset requests the web
tier only queued (saas/accounts/deferred.py, workers/accounts.py).

The web app is not eager, as in production: its answer leaves before any
account exists, and the broker holds only sealed messages. The worker runs in
a thread of this process on the real Redis broker and a queue of its own
(tests/integration/conftest.py), against the real database and a real SMTP
server (aiosmtpd).
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urlsplit

import pytest
import webtest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.types import AuditType
from saas.config import configure
from saas.passwords import Passwords
from saas.tenants.models import Member

pytestmark = pytest.mark.integration

PASSWORD = "a queued sign-up passphrase"
NEW_PASSWORD = "a passphrase chosen after the reset"
IP = "203.0.113.77"


@pytest.fixture
def web(app_settings, redis_client):
    """A production-like web app (tasks queued, not run) on its own queue."""
    queue = f"bk-test-accounts-{uuid.uuid4().hex}"
    prefix = f"{app_settings['saas.redis_prefix']}:accounts-{uuid.uuid4().hex[:8]}"
    app = configure({**app_settings, "celery.always_eager": "false",
                     "celery.default_queue": queue, "saas.redis_prefix": prefix}).make_wsgi_app()
    client = webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test", "REMOTE_ADDR": IP})
    client.queue = queue
    yield client
    app.registry["saas.db_engine"].dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def _queued(broker_client, queue: str) -> list[bytes]:
    """Each queued task message, as the broker holds it, with its body decoded."""
    messages = []
    for raw in broker_client.lrange(queue, 0, -1):
        body = base64.b64decode(json.loads(raw)["body"])
        messages.append(raw + b"\n" + body)
    return messages


def _events(engine, type_: str) -> dict[str, AuditEvent]:
    with Session(engine) as db:
        return {event.request_id: event for event in db.scalars(
            select(AuditEvent).where(AuditEvent.type == type_))}


def _member(engine, email: str) -> Member | None:
    with Session(engine, expire_on_commit=False) as db:
        return db.scalar(select(Member).where(Member.email == email))


def test_a_worker_signs_up_and_resets_from_the_queued_tasks(
        web, make_worker_app, smtp_server, broker_client, engine):
    email = f"queued-{uuid.uuid4().hex[:8]}@example.com"
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    form = web.get("/dashboard/signup").forms[0]
    form["tenant_name"], form["email"], form["password"] = "Queued", email.upper(), PASSWORD
    signed_up = form.submit(status=200)
    assert "Check your email" in signed_up.text
    # Answered, and nothing done yet: one sealed message waits on the broker.
    assert _member(engine, email) is None
    (queued,) = _queued(broker_client, web.queue)
    for clear in (email.encode(), email.upper().encode(), b"argon2", b"Queued", IP.encode()):
        assert clear not in queued

    mailbox = smtp_server.mailbox
    worker = make_worker_app(smtp_server.url, web.queue)
    with start_worker(worker, pool="solo", perform_ping_check=False, shutdown_timeout=15):
        (verify,) = mailbox.wait_for(email)
        assert verify.subject == "Confirm your email address"
        member = _member(engine, email)
        assert member is not None and member.email_verified_at is None
        assert Passwords().verify(member.password_hash, PASSWORD)
        created = _events(engine, AuditType.TENANT_CREATED)[signed_up.headers["X-Request-ID"]]
        assert created.tenant_id == member.tenant_id and created.ip == IP

        asked = {}
        # The unknown address first: the solo worker takes tasks in order, so
        # a mail for it would arrive before the known address's.
        for address in (unknown, email):
            form = web.get("/dashboard/forgot-password").forms[0]
            form["email"] = address
            asked[address] = form.submit(status=200).headers["X-Request-ID"]
        reset_mail = mailbox.wait_for(email, count=2)[1]
        assert mailbox.to(unknown) == []
        requested = _events(engine, AuditType.MEMBER_PASSWORD_RESET_REQUESTED)
    # Both requests audited; the unknown address's with no tenant.
    assert requested[asked[email]].tenant_id == member.tenant_id
    assert requested[asked[unknown]].tenant_id is None
    assert requested[asked[unknown]].ip == IP

    assert reset_mail.subject == "Reset your Bridgekeeper password"
    page = web.get(urlsplit(reset_mail.link("/dashboard/reset/")).path)
    form = page.forms["reset"]
    form["password"] = NEW_PASSWORD
    form.submit(status=303)
    assert Passwords().verify(_member(engine, email).password_hash, NEW_PASSWORD)
