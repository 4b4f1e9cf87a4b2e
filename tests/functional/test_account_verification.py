"""Email verification: the link mailed at sign-up, the banner, sending it again,
and what an unverified member may not do (docs/accounts.md)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from saas.accounts.models import AccountLink
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from saas.db import utcnow
from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import build_world, csrf_token, post, sign_in


def _sign_up(webapp, email: str):
    """Sign up (the "check your email" page), then sign in as the new member does."""
    form = webapp.get("/dashboard/signup").forms[0]
    form["tenant_name"], form["email"], form["password"] = "Acme", email, DEFAULT_PASSWORD
    form.submit(status=200)
    return sign_in(webapp, email)


def _path(url: str) -> str:
    return urlsplit(url).path


def test_sign_up_mails_a_link_that_verifies_the_address_once(webapp, db, mailbox):
    email = "verify-me@example.com"
    _sign_up(webapp, email)
    member = db.scalar(select(Member).where(Member.email == email))
    assert member.email_verified_at is None
    apps = webapp.get("/dashboard/apps")
    assert apps.html.find(id="verify-banner") is not None

    (mail,) = mailbox.wait_for(email)
    assert mail.subject == "Confirm your email address"
    assert mail.recipients == (email,)
    link = mail.link("/dashboard/verify/")
    assert link.startswith("http://bk.test/dashboard/verify/")  # saas.public_base_url
    assert link in mail.html  # both parts carry it
    token = _path(link).rsplit("/", 1)[1]
    stored = db.scalar(select(AccountLink).where(AccountLink.member_id == member.id))
    assert stored.token_hash == hash_token(token) and token not in repr(vars(stored))
    assert stored.expires_at - stored.created_at == dt.timedelta(hours=24)

    done = webapp.get(_path(link), status=303)
    assert done.headers["Location"].endswith("/dashboard/apps")
    page = done.follow()
    assert "your email address is verified" in page.text
    assert page.html.find(id="verify-banner") is None
    db.refresh(member)
    assert member.email_verified_at is not None
    events = db.scalars(select(AuditEvent.type).where(AuditEvent.tenant_id == member.tenant_id))
    assert "member.email_verified" in set(events)

    again = webapp.get(_path(link), status=404)
    assert "This link is not valid" in again.text
    assert again.headers["Cache-Control"] == "no-store"
    assert again.headers["Referrer-Policy"] == "no-referrer"


def test_the_link_works_without_being_signed_in(webapp, db, mailbox):
    email = "elsewhere@example.com"
    _sign_up(webapp, email)
    link = mailbox.wait_for(email)[0].link("/dashboard/verify/")
    webapp.reset()  # another browser
    page = webapp.get(_path(link), status=200)
    assert "Your email address is verified" in page.text
    assert db.scalar(select(Member.email_verified_at).where(Member.email == email)) is not None


def test_an_expired_or_unknown_link_is_refused(webapp, db, mailbox):
    email = "late@example.com"
    _sign_up(webapp, email)
    link = mailbox.wait_for(email)[0].link("/dashboard/verify/")
    db.execute(update(AccountLink).where(AccountLink.token_hash == hash_token(
        _path(link).rsplit("/", 1)[1])).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    webapp.get(_path(link), status=404)
    webapp.get("/dashboard/verify/" + "x" * 43, status=404)
    webapp.get("/dashboard/verify/" + "x" * 500, status=404)
    assert db.scalar(select(Member.email_verified_at).where(Member.email == email)) is None


def test_resend_replaces_the_link_and_is_rate_limited(webapp, db, passwords, mailbox):
    member = make_member(db, passwords, email="resend@example.com", verified=False)
    db.commit()
    sign_in(webapp, member.email)
    sent = []
    for _ in range(3):
        page = webapp.post("/dashboard/account/verify/resend",
                           {"csrf_token": csrf_token(webapp)}, status=303).follow()
        assert f"We sent a new link to {member.email}" in page.text
        sent = mailbox.wait_for(member.email, len(sent) + 1)
    page = webapp.post("/dashboard/account/verify/resend",
                       {"csrf_token": csrf_token(webapp)}, status=303).follow()
    assert "A link was sent a moment ago" in page.text
    assert len(mailbox.to(member.email)) == 3

    first, last = sent[0].link("/verify/"), sent[-1].link("/verify/")
    webapp.get(_path(first), status=404)  # replaced by the newer one
    webapp.get(_path(last), status=303)
    db.refresh(member)
    assert member.email_verified_at is not None


@pytest.mark.parametrize(("name", "path", "data"), [
    ("reveal", lambda w: f"/dashboard/apps/{w.app.app_id}/secrets/reveal",
     {"password": DEFAULT_PASSWORD}),
    ("rotate", lambda w: f"/dashboard/apps/{w.app.app_id}/secrets/custom_token/rotate",
     {"password": DEFAULT_PASSWORD, "grace_hours": "1"}),
    ("client secret rotate",
     lambda w: f"/dashboard/apps/{w.app.app_id}/secrets/client_secret/rotate",
     {"password": DEFAULT_PASSWORD, "grace_hours": "1"}),
    ("api key", lambda w: "/dashboard/api-keys", {"name": "CI"}),
    ("invite", lambda w: "/dashboard/members/invite",
     {"email": "friend@example.com", "role": "viewer"}),
])
def test_an_unverified_member_may_look_but_not_touch_secrets_keys_or_members(
        webapp, db, passwords, secret_box, name, path, data):
    world = build_world(db, passwords, secret_box)
    world.owner.email_verified_at = None
    db.commit()
    sign_in(webapp, world.owner.email)
    webapp.get(f"/dashboard/apps/{world.app.app_id}/secrets", status=200)  # looking is fine
    before = db.scalar(select(AuditEvent.id).order_by(AuditEvent.at.desc()).limit(1))
    page = post(webapp, path(world), data, token=csrf_token(webapp), status=403)
    assert "Verify your email address first" in page.text
    assert "email_unverified" in page.text
    assert page.html.find(id="secret-custom-auth") is None
    assert page.html.find(id="new-key") is None
    after = db.scalar(select(AuditEvent.id).order_by(AuditEvent.at.desc()).limit(1))
    assert after == before  # nothing revealed, rotated, created or invited


def test_a_verified_member_passes_the_same_gate(webapp, db, passwords, secret_box):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    post(webapp, "/dashboard/api-keys", {"name": "CI", "password": DEFAULT_PASSWORD},
         token=csrf_token(webapp), status=200)


def test_a_joining_member_is_mailed_a_verification_link(webapp, db, passwords, secret_box,
                                                          mailbox):
    world = build_world(db, passwords, secret_box)
    form = webapp.get(f"/dashboard/invite/{world.invite_token}").forms[0]
    form["password"] = DEFAULT_PASSWORD
    form.submit(status=303)
    (mail,) = mailbox.wait_for(world.invite.email)
    assert mail.link("/dashboard/verify/")
    assert db.scalar(select(Member.email_verified_at)
                     .where(Member.email == world.invite.email)) is None

