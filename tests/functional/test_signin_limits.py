"""Dashboard sign-in: buckets per IP and per email, waits that grow, no lock-out."""

from __future__ import annotations

import time
import uuid

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from saas.audit.models import AuditEvent
from saas.config import configure
from tests.factories import DEFAULT_PASSWORD, make_member

WRONG = "not the password at all"


@pytest.fixture
def limited(request, app_settings, db_connection, redis_client):
    """A web app with small sign-in limits (bursts per IP and per email, or the
    test's indirect parameter) and Redis keys of its own."""
    ip_burst, email_burst = getattr(request, "param", (4, 3))
    prefix = f"{app_settings['saas.redis_prefix']}:signin-{uuid.uuid4().hex[:8]}"
    app = configure(dict(app_settings, **{
        "saas.redis_prefix": prefix,
        "saas.ratelimit.signin_ip.rate": "1/minute",
        "saas.ratelimit.signin_ip.burst": str(ip_burst),
        "saas.ratelimit.signin_email.rate": "1/minute",
        "saas.ratelimit.signin_email.burst": str(email_burst),
    })).make_wsgi_app()
    app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test"})
    app.registry["saas.db_engine"].dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def attempt(webapp, email: str, password: str, ip: str, status):
    webapp.reset()
    page = webapp.get("/dashboard/signin", extra_environ={"REMOTE_ADDR": ip})
    csrf = page.forms[0]["csrf_token"].value
    return webapp.post("/dashboard/signin",
                       {"csrf_token": csrf, "email": email, "password": password, "next": ""},
                       extra_environ={"REMOTE_ADDR": ip}, status=status)


def retry_after(response) -> int:
    seconds = int(response.headers["Retry-After"])
    unit = "second" if seconds == 1 else "seconds"  # "1 second", never "1 seconds"
    assert f"Too many attempts. Try again in {seconds} {unit}." in response.text
    assert response.html.find("form") is not None  # the sign-in page again
    return seconds


@pytest.mark.parametrize("limited", [(50, 50)], indirect=True)  # the penalty alone
def test_bad_passwords_wait_longer_each_time_then_the_right_one_works(limited, db, passwords):
    member = make_member(db, passwords, email="Slow@Example.com")
    db.commit()
    ip = "203.0.113.10"
    attempt(limited, "slow@example.com", WRONG, ip, 401)
    waits = []
    for _ in range(3):
        refused = attempt(limited, "SLOW@example.com", WRONG, ip, 429)  # case-insensitive
        waits.append(retry_after(refused))
        time.sleep(waits[-1])
        attempt(limited, "slow@example.com", WRONG, ip, 401)
    assert waits == [1, 2, 4]
    wait = retry_after(attempt(limited, "slow@example.com", DEFAULT_PASSWORD, ip, 429))
    assert wait == 8
    # Even the right password waits, but only as long as told: never locked out.
    time.sleep(wait)
    signed_in = attempt(limited, "slow@example.com", DEFAULT_PASSWORD, ip, 303)
    assert signed_in.location.endswith("/dashboard/apps")
    # Success forgets the failures: a later typo waits 1 s, not 16 s.
    attempt(limited, "slow@example.com", WRONG, ip, 401)
    assert retry_after(attempt(limited, "slow@example.com", WRONG, ip, 429)) == 1

    events = db.scalars(select(AuditEvent).where(
        AuditEvent.type == "member.sign_in_failed",
        AuditEvent.tenant_id == member.tenant_id)).all()
    reasons = [e.reason for e in events]
    assert reasons.count("rate_limited") == 5 and "credentials_invalid" in reasons


def test_one_ip_spraying_emails_is_stopped_others_are_not(limited, db, passwords):
    make_member(db, passwords, email="victim@example.com")
    make_member(db, passwords, email="bystander@example.com")
    db.commit()
    attacker, other = "198.51.100.7", "198.51.100.8"
    for n in range(4):  # the IP bucket holds 4; different emails dodge the penalty
        attempt(limited, f"guess{n}@example.com", WRONG, attacker, 401)
    refused = attempt(limited, "victim@example.com", DEFAULT_PASSWORD, attacker, 429)
    assert 1 <= retry_after(refused) <= 60
    # Another email from another IP is unaffected.
    attempt(limited, "bystander@example.com", DEFAULT_PASSWORD, other, 303)


def test_one_email_from_many_ips_is_stopped(limited, db, passwords):
    make_member(db, passwords, email="target@example.com")
    db.commit()
    for n in range(3):  # the email bucket holds 3
        attempt(limited, "target@example.com", WRONG, f"192.0.2.{n + 1}", 401)
    refused = attempt(limited, "Target@example.com", WRONG, "192.0.2.99", 429)
    assert 1 <= retry_after(refused) <= 60


def test_successful_sign_ins_do_not_use_up_the_buckets(limited, db, passwords):
    make_member(db, passwords, email="office@example.com")
    db.commit()
    for _ in range(8):  # twice the IP bucket, from one NAT address
        attempt(limited, "office@example.com", DEFAULT_PASSWORD, "203.0.113.50", 303)
