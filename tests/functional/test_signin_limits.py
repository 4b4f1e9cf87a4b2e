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
from saas.proof_of_work import solve
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


def test_strangers_cannot_lock_a_member_out(limited, db, passwords):
    """Finding: wrong passwords for an email from other addresses emptied the
    per-email bucket before any password was checked, so the owner's right
    password was refused (429). Failures now only make sign-in for that email
    cost a proof of work; the right password from a fresh address gets in."""
    make_member(db, passwords, email="target@example.com")
    db.commit()
    for n in range(3):  # the email's failure bucket holds 3
        attempt(limited, "target@example.com", WRONG, f"192.0.2.{n + 1}", 401)
    owner_ip = "198.51.100.200"
    challenged = attempt(limited, "Target@example.com", DEFAULT_PASSWORD, owner_ip, 401)
    assert "Retry-After" not in challenged.headers
    form = challenged.forms[0]
    assert form["email"].value == "Target@example.com"
    token = form["pow_challenge"].value
    bits = int(form.fields["pow_challenge"][0].attrs["data-bits"])
    csrf = form["csrf_token"].value
    signed_in = limited.post("/dashboard/signin", {
        "csrf_token": csrf, "email": "target@example.com", "password": DEFAULT_PASSWORD,
        "next": "", "pow_challenge": token, "pow_nonce": solve(token, bits)},
        extra_environ={"REMOTE_ADDR": owner_ip}, status=303)
    assert signed_in.location.endswith("/dashboard/apps")


def test_a_thousand_failures_from_elsewhere_never_refuse_the_right_password(limited, db,
                                                                           passwords, registry):
    make_member(db, passwords, email="popular@example.com")
    db.commit()
    # Three real failures over HTTP, the other 997 charged the way a failure is
    # (each real one costs an argon2 hash and, past the third, a proof of work).
    for n in range(3):
        attempt(limited, "popular@example.com", WRONG, f"203.0.113.{n + 1}", 401)
    limiter = limited.app.registry["saas.rate_limiter"]
    limit = limited.app.registry["saas.rate_limits"]["signin_email"]
    for _ in range(997):
        limiter.check(None, [(limit, "popular@example.com")])
    # A guess with a solved challenge is still just a wrong password …
    challenged = attempt(limited, "popular@example.com", WRONG, "203.0.113.99", 401)
    token = challenged.forms[0]["pow_challenge"].value
    bits = int(challenged.forms[0].fields["pow_challenge"][0].attrs["data-bits"])
    wrong = limited.post("/dashboard/signin", {
        "csrf_token": challenged.forms[0]["csrf_token"].value, "email": "popular@example.com",
        "password": WRONG, "next": "", "pow_challenge": token, "pow_nonce": solve(token, bits)},
        extra_environ={"REMOTE_ADDR": "203.0.113.99"}, status=401)
    assert "Email or password is incorrect." in wrong.text
    # … a challenge is single use and bound to its email …
    reused = limited.post("/dashboard/signin", {
        "csrf_token": challenged.forms[0]["csrf_token"].value, "email": "popular@example.com",
        "password": DEFAULT_PASSWORD, "next": "", "pow_challenge": token,
        "pow_nonce": solve(token, bits)}, extra_environ={"REMOTE_ADDR": "198.51.100.1"},
        status=401)
    assert reused.forms[0]["pow_challenge"].value != token
    # … and the owner, from a new address, solves one and is in.
    fresh = reused.forms[0]
    limited.post("/dashboard/signin", {
        "csrf_token": fresh["csrf_token"].value, "email": "popular@example.com",
        "password": DEFAULT_PASSWORD, "next": "", "pow_challenge": fresh["pow_challenge"].value,
        "pow_nonce": solve(fresh["pow_challenge"].value, bits)},
        extra_environ={"REMOTE_ADDR": "198.51.100.1"}, status=303)


def test_successful_sign_ins_do_not_use_up_the_buckets(limited, db, passwords):
    make_member(db, passwords, email="office@example.com")
    db.commit()
    for _ in range(8):  # twice the IP bucket, from one NAT address
        attempt(limited, "office@example.com", DEFAULT_PASSWORD, "203.0.113.50", 303)
