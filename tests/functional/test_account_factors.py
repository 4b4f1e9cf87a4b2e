"""Second factors: TOTP enrolment, the sign-in's second step, recovery codes,
replays, throttling, removal, and what they do to other sessions
(docs/accounts.md, "Second factors")."""

from __future__ import annotations

import json
import time
import uuid

import pyotp
import pytest
import webtest
from sqlalchemy import select

from saas.accounts.models import RecoveryCode, TotpFactor
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import csrf_token, sign_in

STEP = 30


@pytest.fixture
def member(db, passwords):
    created = make_member(db, passwords, email=f"f-{uuid.uuid4().hex[:6]}@example.com")
    db.commit()
    return created


@pytest.fixture
def other_browser(wsgi_app):
    return webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "bk.test",
                                                    "REMOTE_ADDR": "203.0.113.77"})


def code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + steps_ahead * STEP)


def events(db, member, type_: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.tenant_id == member.tenant_id,
                                                    AuditEvent.type == type_)))


def enrol_totp(webapp) -> tuple[str, list[str]]:
    """Set up TOTP from the second-factor page; the seed and the recovery codes."""
    page = webapp.get("/dashboard/account/second-factor")
    page.forms[[f.action for f in page.forms.values()].index(
        "http://bk.test/dashboard/account/totp/start")].submit(status=303)
    page = webapp.get("/dashboard/account/second-factor")
    secret = page.html.find(id="totp-secret").get_text(strip=True)
    assert page.html.find(id="totp-qr").find("svg") is not None
    token = page.html.find("input", attrs={"name": "csrf_token"})["value"]
    done = webapp.post("/dashboard/account/totp/confirm",
                       {"csrf_token": token, "totp_code": code(secret)}, status=200)
    codes = [li.get_text(strip=True) for li in done.html.find(id="recovery-code-list")("li")]
    return secret, codes


def password_step(webapp, email: str, next_: str = "") -> webtest.TestResponse:
    webapp.reset()
    form = webapp.get("/dashboard/signin" + (f"?next={next_}" if next_ else "")).forms[0]
    form["email"], form["password"] = email, DEFAULT_PASSWORD
    return form.submit(status=303)


def second_step(webapp, answer: str, status: int | str = 303) -> webtest.TestResponse:
    forms = webapp.get("/dashboard/signin/second-factor").forms
    form = forms[len(forms) - 1]
    form["code"] = answer
    return form.submit(status=status)


def signed_in(webapp) -> bool:
    return webapp.get("/dashboard/apps", expect_errors=True).status_int == 200


def forget_penalty(registry, member) -> None:
    """As if the penalty's wait had passed (the waits themselves are tested once)."""
    registry["saas.rate_limiter"].reset(None, "second_factor", str(member.id))


def test_totp_enrolment_shows_a_qr_code_and_ten_codes_and_stores_the_seed_encrypted(
        webapp, db, member):
    sign_in(webapp, member.email)
    secret, codes = enrol_totp(webapp)
    assert len(codes) == 10 and len(set(codes)) == 10
    factor = db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id))
    assert factor.confirmed_at is not None
    assert secret not in factor.secret_ciphertext
    stored = {row.code_hash for row in db.scalars(
        select(RecoveryCode).where(RecoveryCode.member_id == member.id))}
    assert stored == {hash_token(c.replace("-", "")) for c in codes}
    (event,) = events(db, member, "member.second_factor_enrolled")
    assert event.details["factor"] == "totp"
    assert secret not in str(event.details)
    page = webapp.get("/dashboard/account/second-factor")
    assert page.html.find(id="recovery-code-list") is None  # shown once
    assert "otpauth" not in page.text


def test_the_enrolment_page_draws_the_qr_code_as_inline_svg(webapp, member):
    sign_in(webapp, member.email)
    page = webapp.get("/dashboard/account/second-factor")
    page.forms[1].submit(status=303)
    page = webapp.get("/dashboard/account/second-factor")
    svg = page.html.find(id="totp-qr").find("svg")
    assert svg is not None and svg.find("path") is not None
    secret = page.html.find(id="totp-secret").get_text(strip=True)
    assert len(secret) == 32


def test_a_wrong_enrolment_code_leaves_totp_off(webapp, db, member):
    sign_in(webapp, member.email)
    webapp.post("/dashboard/account/totp/start", {"csrf_token": csrf_token(webapp)}, status=303)
    answer = webapp.post("/dashboard/account/totp/confirm",
                         {"csrf_token": csrf_token(webapp), "totp_code": "000000"}, status=401)
    assert "That code is not right" in answer.text
    factor = db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id))
    assert factor.confirmed_at is None
    password_step(webapp, member.email).follow()
    assert signed_in(webapp)  # no second step for an unconfirmed seed


def test_sign_in_asks_for_the_code_and_is_not_signed_in_before(webapp, db, member, registry):
    sign_in(webapp, member.email)
    secret, _ = enrol_totp(webapp)
    answer = password_step(webapp, member.email, "/dashboard/api-keys")
    assert answer.headers["Location"].endswith("/dashboard/signin/second-factor")
    assert not signed_in(webapp)  # the half-signed-in session opens nothing
    assert webapp.get("/dashboard/account", status=303).headers["Location"].startswith(
        "http://bk.test/dashboard/signin")
    cookie_before = webapp.cookies["bk_session"]
    wrong = second_step(webapp, "123456" if code(secret, 1) != "123456" else "654321", 401)
    assert "That code is not right." in wrong.text
    forget_penalty(registry, member)
    done = second_step(webapp, code(secret, 1))
    assert done.headers["Location"] == "http://bk.test/dashboard/api-keys"
    assert webapp.cookies["bk_session"] != cookie_before  # a fresh session id
    assert signed_in(webapp)
    (failed,) = events(db, member, "member.second_factor_failed")
    assert failed.reason == "totp_invalid" and failed.outcome == "failure"
    signed = events(db, member, "member.signed_in")
    assert signed[-1].details["second_factor"] == "totp"


def test_a_code_is_never_accepted_twice(webapp, db, member, registry):
    sign_in(webapp, member.email)
    secret, _ = enrol_totp(webapp)
    used = code(secret, 1)
    password_step(webapp, member.email)
    second_step(webapp, used)
    password_step(webapp, member.email)
    replay = second_step(webapp, used, 401)  # the same step, a second time
    assert "That code is not right." in replay.text
    # An older step than the last one used is refused as well.
    forget_penalty(registry, member)
    second_step(webapp, code(secret, 0), 401)
    assert not signed_in(webapp)


def test_a_recovery_code_signs_in_once(webapp, db, member, registry):
    sign_in(webapp, member.email)
    _, codes = enrol_totp(webapp)
    password_step(webapp, member.email)
    second_step(webapp, codes[3].upper().replace("-", " "))  # forgiving of case and spaces
    assert signed_in(webapp)
    (used,) = events(db, member, "member.recovery_code_used")
    assert used.details["remaining"] == 9
    assert codes[3] not in str(used.details)
    password_step(webapp, member.email)
    second_step(webapp, codes[3], 401)
    assert not signed_in(webapp)
    forget_penalty(registry, member)
    second_step(webapp, codes[4])
    assert signed_in(webapp)


def test_wrong_codes_wait_longer_and_too_many_start_over(webapp, member, registry):
    sign_in(webapp, member.email)
    enrol_totp(webapp)
    password_step(webapp, member.email)
    second_step(webapp, "000000", 401)
    refused = second_step(webapp, "000001", 429)
    assert int(refused.headers["Retry-After"]) >= 1
    for _ in range(4):
        forget_penalty(registry, member)
        last = second_step(webapp, "aaaaa-aaaaa", "*")
    assert last.status_int == 303 and last.headers["Location"].endswith("/dashboard/signin")
    assert webapp.get("/dashboard/signin/second-factor", status=303)  # nothing pending


def test_the_pending_step_expires(webapp, member, registry):
    sign_in(webapp, member.email)
    secret, _ = enrol_totp(webapp)
    password_step(webapp, member.email)
    page = webapp.get("/dashboard/signin/second-factor")
    # Five minutes later (the pending marker's own clock moved back).
    edit_session(registry, webapp, lambda data: data["pending_signin"].update(
        until=time.time() - 1))
    form = page.forms[len(page.forms) - 1]
    form["code"] = code(secret, 1)
    answer = form.submit(status=303)
    assert answer.headers["Location"].endswith("/dashboard/signin")
    assert not signed_in(webapp)


def test_enrolling_ends_the_other_sessions_and_keeps_this_one(webapp, other_browser, member):
    sign_in(other_browser, member.email)
    sign_in(webapp, member.email)
    enrol_totp(webapp)
    assert signed_in(webapp)
    assert not signed_in(other_browser)


def test_removing_totp_needs_a_fresh_code_and_ends_other_sessions(
        webapp, other_browser, db, member, registry):
    sign_in(webapp, member.email)
    secret, codes = enrol_totp(webapp)
    password_step(other_browser, member.email)
    second_step(other_browser, codes[0])
    # Six minutes later: the enrolment's freshness is over.
    age_step_up(registry, webapp)
    refused = webapp.post("/dashboard/account/totp/remove",
                          {"csrf_token": csrf_token(webapp)}, status=401)
    assert "Confirm it is you first" in refused.text
    assert db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id)) is not None
    webapp.post("/dashboard/account/totp/remove",
                {"csrf_token": csrf_token(webapp), "second_factor": code(secret, 1)}, status=303)
    db.expire_all()
    assert db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id)) is None
    assert db.scalar(select(RecoveryCode).where(RecoveryCode.member_id == member.id)) is None
    assert events(db, member, "member.second_factor_removed")
    assert signed_in(webapp) and not signed_in(other_browser)
    password_step(webapp, member.email).follow()  # the password alone again
    assert signed_in(webapp)


def test_new_recovery_codes_invalidate_the_old(webapp, db, member, registry):
    sign_in(webapp, member.email)
    _, old = enrol_totp(webapp)
    page = webapp.post("/dashboard/account/recovery-codes", {"csrf_token": csrf_token(webapp)},
                       status=200)  # fresh: the enrolment just gave a code
    new = [li.get_text(strip=True) for li in page.html.find(id="recovery-code-list")("li")]
    assert len(new) == 10 and not set(new) & set(old)
    assert events(db, member, "member.recovery_codes_regenerated")
    password_step(webapp, member.email)
    second_step(webapp, old[0], 401)
    forget_penalty(registry, member)
    second_step(webapp, new[0])
    assert signed_in(webapp)


def edit_session(registry, browser, change) -> None:
    """Change the data of ``browser``'s dashboard session in Redis."""
    store = registry["saas.redis"]
    key = registry["saas.redis_keys"].global_("session", hash_token(browser.cookies["bk_session"]))
    data = json.loads(store.get(key))
    change(data)
    store.set(key, json.dumps(data), keepttl=True)


def age_step_up(registry, browser) -> None:
    """As if the last second factor of ``browser``'s session was six minutes ago."""
    edit_session(registry, browser, lambda data: data.update(
        second_factor_at=data["second_factor_at"] - 360))
