"""Password reset by a single-use link (1 h), answered the same way whether or
not the address belongs to a member (docs/accounts.md)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import urlsplit

import pytest
import webtest
from sqlalchemy import select, update

from saas.accounts.models import AccountLink
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from saas.db import utcnow
from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import sign_in

NEW_PASSWORD = "a brand new passphrase"
# What may differ between two answers: ids and times, nothing about the address.
VARYING = {"X-Request-ID", "Date", "Content-Length"}


def _ip() -> dict[str, str]:
    # Each test its own client address: the per-IP bucket is the run's.
    return {"REMOTE_ADDR": f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}


def _ask(webapp, email: str, environ: dict[str, str], status: int = 200):
    form = webapp.get("/dashboard/forgot-password", extra_environ=environ).forms["forgot"]
    form["email"] = email
    return form.submit(extra_environ=environ, status=status)


def _path(url: str) -> str:
    return urlsplit(url).path


def _reset_link(mailbox, email: str) -> str:
    """The newest reset link mailed to ``email``."""
    mailbox.wait_for(email)
    return _path(mailbox.last(email).link("/dashboard/reset/"))


@pytest.fixture
def member(db, passwords):
    created = make_member(db, passwords, email=f"forgetful-{uuid.uuid4().hex[:6]}@example.com",
                          verified=False)
    db.commit()
    return created


def test_sign_in_links_to_the_forgotten_password_form(webapp):
    page = webapp.get("/dashboard/signin")
    assert page.click("Forgot password?").status_int == 200


def test_known_and_unknown_addresses_get_the_same_answer(webapp, member, mailbox, db):
    environ = _ip()
    webapp.get("/dashboard/forgot-password", extra_environ=environ)  # the session exists
    unknown = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    answers = [_ask(webapp, email, environ) for email in (member.email, unknown, member.email)]
    first, second, third = answers
    assert first.status == second.status == third.status == "200 OK"
    assert first.body == second.body == third.body
    assert member.email.encode() not in first.body and unknown.encode() not in second.body

    def headers(answer) -> list[tuple[str, str]]:
        # The session cookie's expiry date moves on with the clock's second.
        return sorted((k, re.sub(r"expires=[^;]*", "expires=…", v) if k == "Set-Cookie" else v)
                      for k, v in answer.headerlist if k not in VARYING)

    assert headers(first) == headers(second) == headers(third)
    assert len(mailbox.wait_for(member.email, 2)) == 2  # the known address got its mails
    assert mailbox.to(unknown) == []  # built, sealed, handed over, dropped
    events = db.scalars(select(AuditEvent).where(
        AuditEvent.type == "member.password_reset_requested",
        AuditEvent.ip == environ["REMOTE_ADDR"])).all()
    assert sorted(str(e.tenant_id) for e in events) == sorted(
        [str(member.tenant_id)] * 2 + ["None"])


def test_a_reset_link_sets_the_password_once_and_signs_every_session_out(
        webapp, wsgi_app, member, mailbox, db, passwords):
    other = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "bk.test"})
    sign_in(other, member.email)
    other.get("/dashboard/apps", status=200)

    _ask(webapp, member.email, _ip())
    mail = mailbox.wait_for(member.email)[0]
    assert mail.subject == "Reset your Bridgekeeper password"
    path = _path(mail.link("/dashboard/reset/"))
    assert path.startswith("/dashboard/reset/")
    stored = db.scalar(select(AccountLink).where(
        AccountLink.token_hash == hash_token(path.rsplit("/", 1)[1])))
    assert stored.expires_at - stored.created_at == dt.timedelta(hours=1)

    form_page = webapp.get(path)
    assert form_page.headers["Referrer-Policy"] == "no-referrer"
    assert member.email in form_page.text
    form = form_page.forms["reset"]
    form["password"] = "short"
    refused = form.submit(status=400)
    assert "at least 10 characters" in refused.text
    form = refused.forms["reset"]
    form["password"] = NEW_PASSWORD
    done = form.submit(status=303)
    assert done.headers["Location"].endswith("/dashboard/signin")
    assert "Your password was changed" in done.follow().text

    db.expire_all()
    changed = db.get(Member, member.id)
    assert passwords.verify(changed.password_hash, NEW_PASSWORD)
    assert changed.sessions_valid_after is not None
    assert changed.email_verified_at is not None  # the link reached the address
    assert other.get("/dashboard/apps", status=303).headers["Location"].startswith(
        "http://bk.test/dashboard/signin")
    assert "This link is not valid" in webapp.get(path, status=404).text
    webapp.post(path, {"csrf_token": "x", "password": "another new passphrase"}, status=400)

    sign_in(webapp, member.email, NEW_PASSWORD)
    notice = mailbox.last(member.email)
    assert notice.subject == "Your Bridgekeeper password changed"
    types = set(db.scalars(select(AuditEvent.type).where(
        AuditEvent.tenant_id == member.tenant_id)))
    assert {"member.password_reset_requested", "member.password_reset"} <= types


def test_an_expired_link_is_refused(webapp, member, mailbox, db):
    _ask(webapp, member.email, _ip())
    path = _reset_link(mailbox, member.email)
    db.execute(update(AccountLink).where(AccountLink.member_id == member.id)
               .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    page = webapp.get(path, status=404)
    assert "Ask for a new link" in page.text
    token = webapp.get("/dashboard/forgot-password").forms[0]["csrf_token"].value
    webapp.post(path, {"csrf_token": token, "password": NEW_PASSWORD}, status=404)


def test_a_newer_link_replaces_the_older(webapp, member, mailbox):
    environ = _ip()
    _ask(webapp, member.email, environ)
    first = _reset_link(mailbox, member.email)
    _ask(webapp, member.email, environ)
    mailbox.wait_for(member.email, 2)
    second = _reset_link(mailbox, member.email)
    assert first != second
    webapp.get(first, status=404)
    webapp.get(second, status=200)


def test_an_address_is_mailed_a_few_times_then_answered_without_mail(webapp, member, mailbox):
    for _ in range(5):
        _ask(webapp, member.email, _ip())
    assert len(mailbox.wait_for(member.email, 3)) == 3
    _ask(webapp, f"nobody-{uuid.uuid4().hex[:6]}@example.com", _ip())  # a later request
    assert len(mailbox.to(member.email)) == 3


def test_one_client_address_is_limited(webapp):
    environ = _ip()
    for _ in range(10):
        _ask(webapp, f"someone-{uuid.uuid4().hex[:6]}@example.com", environ)
    refused = _ask(webapp, "someone@example.com", environ, status=429)
    assert int(refused.headers["Retry-After"]) >= 1


def test_an_invalid_address_is_a_form_error(webapp):
    page = _ask(webapp, "not an address", _ip(), status=400)
    assert "Enter a valid email address." in page.text


def test_a_signed_in_member_resetting_is_signed_out(webapp, member, mailbox):
    sign_in(webapp, member.email)
    _ask(webapp, member.email, _ip())
    form = webapp.get(_reset_link(mailbox, member.email)).forms["reset"]
    form["password"] = NEW_PASSWORD
    form.submit(status=303)
    assert webapp.get("/dashboard/apps", status=303).headers["Location"].startswith(
        "http://bk.test/dashboard/signin")
    sign_in(webapp, member.email, NEW_PASSWORD)
    with pytest.raises(webtest.AppError):
        sign_in(webapp, member.email, DEFAULT_PASSWORD)
