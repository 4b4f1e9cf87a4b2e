"""A real Celery worker delivers mail to a real SMTP server (aiosmtpd), and
retries when the server answers with a temporary failure.

The worker runs in a thread of this process on the real Redis broker and a
queue unique to this test, like tests/integration/test_worker.py.
"""

from __future__ import annotations

import smtplib
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

import workers.mail
from saas.crypto import SecretBox
from saas.mail.messages import build_message
from saas.mail.outbox import seal
from saas.tasks import TaskName, send
from tests.conftest import MASTER_KEY
from tests.mailbox import SmtpServer

pytestmark = pytest.mark.integration


def _sealed(to: str) -> str:
    message = build_message("verify_email", to=to, subject="Confirm your email address",
                            sender="Bridgekeeper <no-reply@bk.test>",
                            values={"email": to, "tenant_name": "Acme", "hours": 24,
                                    "url": "http://bk.test/dashboard/verify/t0ken"})
    return seal(SecretBox(MASTER_KEY), message)


def test_a_worker_delivers_a_sealed_message_over_smtp(make_worker_app):
    server = SmtpServer().start()
    try:
        app = make_worker_app(server.url)
        to = f"worker-{uuid.uuid4().hex[:8]}@example.com"
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=15):
            send(app, TaskName.SEND_MAIL, _sealed(to))
            (received,) = server.mailbox.wait_for(to)
    finally:
        server.stop()
    assert received.subject == "Confirm your email address"
    assert received.link("/dashboard/verify/") == "http://bk.test/dashboard/verify/t0ken"


def test_a_temporary_refusal_is_retried(make_worker_app, monkeypatch):
    monkeypatch.setattr(workers.mail, "RETRY_BASE", 0.2)  # the worker runs in this process
    server = SmtpServer(refusals=["451 4.3.0 Try again later"] * 2).start()
    try:
        app = make_worker_app(server.url)
        to = f"retry-{uuid.uuid4().hex[:8]}@example.com"
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=15):
            send(app, TaskName.SEND_MAIL, _sealed(to))
            server.mailbox.wait_for(to)
    finally:
        server.stop()
    assert server.mailbox.attempts == 3
    assert len(server.mailbox.to(to)) == 1


def test_permanent_and_temporary_failures_are_told_apart():
    assert workers.mail.is_permanent(smtplib.SMTPDataError(550, b"no such user"))
    assert not workers.mail.is_permanent(smtplib.SMTPDataError(451, b"later"))
    assert not workers.mail.is_permanent(smtplib.SMTPServerDisconnected("gone"))
    assert not workers.mail.is_permanent(ConnectionRefusedError())
    refused = smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"unknown")})
    assert workers.mail.is_permanent(refused)
    assert [workers.mail.backoff(n) for n in (0, 1, 2)] == [30, 60, 120]
    assert workers.mail.backoff(workers.mail.MAX_RETRIES) == workers.mail.RETRY_CAP
