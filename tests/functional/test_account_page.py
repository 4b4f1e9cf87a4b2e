"""The account page: change password, change email, the member's sessions,
and the cut-off (``members.sessions_valid_after``) that ends older sessions."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
import webtest
from sqlalchemy import select

from saas.audit.models import AuditEvent
from saas.dashboard.common import REAUTH_PENALTY
from saas.db import utcnow
from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import csrf_token, sign_in

NEW_PASSWORD = "a brand new passphrase"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


@pytest.fixture
def member(db, passwords):
    created = make_member(db, passwords, email=f"me-{uuid.uuid4().hex[:6]}@example.com")
    db.commit()
    return created


@pytest.fixture
def browser(wsgi_app, webapp):
    """Another browser of the same member (its own cookies), sharing the test's database."""
    def make(user_agent: str, ip: str) -> webtest.TestApp:
        return webtest.TestApp(wsgi_app, extra_environ={
            "HTTP_HOST": "bk.test", "HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": ip})
    return make


def _signed_out(app: webtest.TestApp) -> bool:
    answer = app.get("/dashboard/apps", expect_errors=True)
    return answer.status_int == 303 and "/dashboard/signin" in answer.headers["Location"]


def _events(db, member, type_: str) -> list[AuditEvent]:
    return db.scalars(select(AuditEvent).where(AuditEvent.tenant_id == member.tenant_id,
                                               AuditEvent.type == type_)).all()


def test_the_page_lists_the_sessions_with_device_ip_and_times(webapp, browser, member):
    phone = browser(IPHONE, "203.0.113.5")
    sign_in(phone, member.email)
    laptop = browser(FIREFOX, "203.0.113.9")
    sign_in(laptop, member.email)
    page = laptop.get("/dashboard/account")
    rows = page.html.find(id="sessions").find("tbody").find_all("tr")
    assert len(rows) == 2
    first, second = (row.get_text(" ", strip=True) for row in rows)
    assert "Firefox on Linux" in first and "this session" in first and "203.0.113.9" in first
    assert "Safari on iPhone" in second and "203.0.113.5" in second
    assert rows[0].find("form") is None  # the current one is ended by signing out
    assert rows[1].find("form") is not None


def test_signing_out_one_session(webapp, browser, member, db):
    phone = browser(IPHONE, "203.0.113.5")
    sign_in(phone, member.email)
    laptop = browser(FIREFOX, "203.0.113.9")
    sign_in(laptop, member.email)
    form = laptop.get("/dashboard/account").html.find(id="sessions").find_all("form")[0]
    done = laptop.post(form["action"], {"csrf_token": csrf_token(laptop)}, status=303)
    assert "The session is signed out." in done.follow().text
    assert _signed_out(phone)
    assert not _signed_out(laptop)
    assert len(laptop.get("/dashboard/account").html.find(id="sessions")
               .find("tbody").find_all("tr")) == 1
    (event,) = _events(db, member, "member.session_revoked")
    assert event.details["sessions_ended"] == 1
    again = laptop.post(form["action"], {"csrf_token": csrf_token(laptop)}, status=303)
    assert "That session had ended already." in again.follow().text


def test_a_session_of_another_member_cannot_be_named(webapp, browser, member, db, passwords):
    stranger = make_member(db, passwords)
    db.commit()
    theirs = browser(IPHONE, "203.0.113.7")
    sign_in(theirs, stranger.email)
    mine = browser(FIREFOX, "203.0.113.8")
    sign_in(mine, member.email)
    second = browser(IPHONE, "203.0.113.17")
    sign_in(second, stranger.email)  # a second session of theirs, so a ref is listed
    refs = [f["action"] for f in theirs.get("/dashboard/account").html
            .find(id="sessions").find_all("form")]
    assert refs
    answer = mine.post(refs[0], {"csrf_token": csrf_token(mine)}, status=303).follow()
    assert "That session had ended already." in answer.text
    assert not _signed_out(second) and not _signed_out(theirs)


def test_sign_out_everywhere_else(webapp, browser, member, db):
    others = [browser(IPHONE, f"203.0.113.{n}") for n in (1, 2)]
    for other in others:
        sign_in(other, member.email)
    me = browser(FIREFOX, "203.0.113.3")
    sign_in(me, member.email)
    before = me.cookies["bk_session"]
    page = me.post("/dashboard/account/sessions/sign-out-others",
                   {"csrf_token": csrf_token(me)}, status=303).follow()
    assert "Every other session is signed out." in page.text
    assert me.cookies["bk_session"] != before  # the current session goes on under a new id
    assert all(_signed_out(other) for other in others)
    assert not _signed_out(me)
    (event,) = _events(db, member, "member.session_revoked")
    assert event.details["sessions_ended"] == 2 and event.details["others"] is True


def test_sessions_begun_before_the_cut_off_are_refused(webapp, browser, member, db):
    other = browser(IPHONE, "203.0.113.4")
    sign_in(other, member.email)
    assert not _signed_out(other)
    db.get(Member, member.id).sessions_valid_after = utcnow()
    db.commit()
    assert _signed_out(other)
    assert "bk_session" not in other.cookies  # the refused session is deleted
    sign_in(other, member.email)  # a new sign-in is after the cut-off
    assert not _signed_out(other)


def _forget_the_wrong_guess(registry, member) -> None:
    """The gate's wait after a wrong password (tested in test_sensitive_actions.py)
    would answer the next request here with 429."""
    registry["saas.rate_limiter"].reset(None, REAUTH_PENALTY, str(member.id))


def test_change_password_needs_the_current_one(webapp, browser, member, db, passwords, mailbox,
                                               registry):
    other = browser(IPHONE, "203.0.113.4")
    sign_in(other, member.email)
    me = browser(FIREFOX, "203.0.113.5")
    sign_in(me, member.email)
    wrong = me.post("/dashboard/account/password", {
        "csrf_token": csrf_token(me), "current_password": "not my password",
        "new_password": NEW_PASSWORD}, status=401)
    assert "That password is not right." in wrong.text
    _forget_the_wrong_guess(registry, member)
    short = me.post("/dashboard/account/password", {
        "csrf_token": csrf_token(me), "current_password": DEFAULT_PASSWORD,
        "new_password": "short"}, status=400)
    assert "at least 10 characters" in short.text
    db.expire_all()
    assert passwords.verify(db.get(Member, member.id).password_hash, DEFAULT_PASSWORD)
    assert not _signed_out(other)

    done = me.post("/dashboard/account/password", {
        "csrf_token": csrf_token(me), "current_password": DEFAULT_PASSWORD,
        "new_password": NEW_PASSWORD}, status=303)
    assert "Your password was changed" in done.follow().text
    assert not _signed_out(me)
    assert _signed_out(other)
    db.expire_all()
    assert passwords.verify(db.get(Member, member.id).password_hash, NEW_PASSWORD)
    assert mailbox.wait_for(member.email)[0].subject == "Your Bridgekeeper password changed"
    (event,) = _events(db, member, "member.password_changed")
    assert event.details["sessions_ended"] == 1
    assert NEW_PASSWORD not in str(event.details) and DEFAULT_PASSWORD not in str(event.details)
    sign_in(other, member.email, NEW_PASSWORD)


def test_forms_of_the_account_page_need_the_csrf_token(webapp, member):
    sign_in(webapp, member.email)
    for path in ("/dashboard/account/password", "/dashboard/account/email",
                 "/dashboard/account/sessions/sign-out-others",
                 "/dashboard/account/verify/resend"):
        webapp.post(path, {"current_password": DEFAULT_PASSWORD}, status=400)


def _ask_change(app, new_email: str, password: str = DEFAULT_PASSWORD, status: int = 303):
    return app.post("/dashboard/account/email", {
        "csrf_token": csrf_token(app), "new_email": new_email,
        "email_password": password}, status=status)


def test_change_email_through_a_link_to_the_new_address(webapp, browser, member, db, mailbox,
                                                         registry):
    other = browser(IPHONE, "203.0.113.4")
    sign_in(other, member.email)
    me = browser(FIREFOX, "203.0.113.5")
    sign_in(me, member.email)
    old, new = member.email, f"new-{uuid.uuid4().hex[:6]}@example.com"
    assert "That password is not right." in _ask_change(me, new, "wrong!", status=401).text
    _forget_the_wrong_guess(registry, member)
    assert "This is your email address already." in _ask_change(me, old, status=400).text
    assert "Enter a valid email address." in _ask_change(me, "nope", status=400).text
    page = _ask_change(me, new.upper()).follow()  # normalised
    assert f"We sent a link to {new}" in page.text
    assert db.scalar(select(Member.email).where(Member.id == member.id)) == old

    mail = mailbox.wait_for(new)[0]
    assert mail.subject == "Confirm your new email address"
    path = urlsplit(mail.link("/dashboard/email/confirm/")).path
    confirm = me.get(path)  # a page with a button: mail scanners open links
    assert new in confirm.text
    assert db.scalar(select(Member.email).where(Member.id == member.id)) == old
    done = confirm.forms["confirm-email"].submit(status=303)
    assert done.headers["Location"].endswith("/dashboard/account")
    assert f"Your email address is now {new}." in done.follow().text

    db.expire_all()
    changed = db.get(Member, member.id)
    assert changed.email == new and changed.email_verified_at is not None
    assert not _signed_out(me) and _signed_out(other)
    notice = mailbox.wait_for(old)[0]
    assert notice.subject == "The email address of your Bridgekeeper account changed"
    assert new in notice.text
    me.get(path, status=404)
    (event,) = _events(db, member, "member.email_changed")
    assert event.details == {"old_email": old, "new_email": new}
    sign_in(other, new)


def test_a_taken_address_gets_the_same_answer_and_no_mail(webapp, member, db, passwords,
                                                            mailbox):
    taken = make_member(db, passwords)
    db.commit()
    sign_in(webapp, member.email)
    page = _ask_change(webapp, taken.email).follow()
    assert f"We sent a link to {taken.email}" in page.text
    free = f"free-{uuid.uuid4().hex[:6]}@example.com"
    _ask_change(webapp, free)
    mailbox.wait_for(free)
    assert mailbox.to(taken.email) == []


def test_an_address_taken_before_the_link_is_opened(webapp, browser, member, db, passwords,
                                                     mailbox):
    sign_in(webapp, member.email)
    new = f"race-{uuid.uuid4().hex[:6]}@example.com"
    _ask_change(webapp, new)
    path = urlsplit(mailbox.wait_for(new)[0].link("/dashboard/email/confirm/")).path
    make_member(db, passwords, email=new)
    db.commit()
    answer = webapp.get(path).forms["confirm-email"].submit(status=409)
    assert "This address cannot be used" in answer.text
    assert db.scalar(select(Member.email).where(Member.id == member.id)) == member.email


def test_the_confirm_link_works_signed_out_and_ends_every_session(webapp, browser, member,
                                                                  db, mailbox):
    sign_in(webapp, member.email)
    new = f"away-{uuid.uuid4().hex[:6]}@example.com"
    _ask_change(webapp, new)
    path = urlsplit(mailbox.wait_for(new)[0].link("/dashboard/email/confirm/")).path
    elsewhere = browser(IPHONE, "203.0.113.6")
    done = elsewhere.get(path).forms["confirm-email"].submit(status=303)
    assert "/dashboard/signin" in done.headers["Location"]
    assert f"Your email address is now {new}." in done.follow().text
    assert _signed_out(webapp)
