"""Sign-up answers the same for a new and a taken address, and is rate-limited
per client IP and overall (each attempt costs an argon2id hash)."""

from __future__ import annotations

import re
import uuid

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from saas.config import configure
from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_member

PASSWORD = "a sign-up passphrase of mine"


def _sign_up(webapp, email: str, ip: str = "192.0.2.1", status="*"):
    webapp.reset()
    page = webapp.get("/dashboard/signup", extra_environ={"REMOTE_ADDR": ip})
    form = page.forms[0]
    form["tenant_name"] = "Acme"
    form["email"] = email
    form["password"] = PASSWORD
    return form.submit(status=status, extra_environ={"REMOTE_ADDR": ip})


def _comparable(response, email: str) -> tuple:
    body = response.text.replace(email, "EMAIL")
    body = re.sub(r'name="csrf_token" value="[^"]+"', "CSRF", body)
    headers = sorted((name, value) for name, value in response.headerlist
                     if name not in ("X-Request-ID", "Set-Cookie", "Content-Length"))
    # The session id, and the expiry date that moves on with the clock's second.
    cookies = sorted(re.sub(r"expires=[^;]*", "expires=…", re.sub(r"=[^;]*;", "=…;", value,
                                                                  count=1))
                     for name, value in response.headerlist if name == "Set-Cookie")
    return response.status, headers, cookies, body


def test_new_and_taken_addresses_get_the_same_answer(webapp, db, passwords, mailbox):
    suffix = uuid.uuid4().hex[:8]
    taken_email, fresh_email = f"taken-{suffix}@example.com", f"fresh-{suffix}@example.com"
    make_member(db, passwords, email=taken_email)
    db.commit()
    new = _sign_up(webapp, fresh_email)
    taken = _sign_up(webapp, taken_email.upper())
    assert new.status_int == 200
    assert "Check your email" in new.text
    assert _comparable(new, fresh_email) == _comparable(taken, taken_email.upper())
    # Only the mail differs: the new address is asked to verify, the taken
    # address's owner is told someone tried it.
    (told,) = mailbox.wait_for(taken_email)
    assert told.subject == "Someone tried to sign up with your address"
    assert "/dashboard/forgot-password" in told.text
    (verify,) = mailbox.wait_for(fresh_email)
    assert verify.link("/dashboard/verify/")
    # The new account exists, unverified, and signs in like any other.
    db.expire_all()
    member = db.scalar(select(Member).where(Member.email == fresh_email))
    assert member is not None and member.email_verified_at is None
    form = webapp.get("/dashboard/signin").forms[0]
    form["email"], form["password"] = fresh_email, PASSWORD
    form.submit(status=303)
    # The taken address's owner still has their password.
    assert passwords.verify(db.scalar(select(Member.password_hash)
                                      .where(Member.email == taken_email)),
                            DEFAULT_PASSWORD)


@pytest.fixture
def limited(app_settings, db_connection, redis_client):
    prefix = f"{app_settings['saas.redis_prefix']}:signup-{uuid.uuid4().hex[:8]}"
    app = configure(dict(app_settings, **{
        "saas.redis_prefix": prefix,
        "saas.ratelimit.signup_ip.rate": "1/hour",
        "saas.ratelimit.signup_ip.burst": "2",
        "saas.ratelimit.signup_all.rate": "1/hour",
        "saas.ratelimit.signup_all.burst": "3",
    })).make_wsgi_app()
    app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test"})
    app.registry["saas.db_engine"].dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def test_sign_up_is_limited_per_ip_and_overall(limited, db):
    _sign_up(limited, "one@example.com", "198.51.100.1", status=200)
    _sign_up(limited, "two@example.com", "198.51.100.1", status=200)
    refused = _sign_up(limited, "three@example.com", "198.51.100.1", status=429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many sign-ups" in refused.text
    _sign_up(limited, "four@example.com", "198.51.100.2", status=200)  # another address
    _sign_up(limited, "five@example.com", "198.51.100.3", status=429)  # the overall cap
    db.expire_all()
    emails = set(db.scalars(select(Member.email)))
    assert {"three@example.com", "five@example.com"}.isdisjoint(emails)
