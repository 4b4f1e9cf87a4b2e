"""The tenant's first journey on the dashboard: sign up, create an app, see secrets."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, text

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_app, make_member


@pytest.fixture(autouse=True)
def _mail(mailbox):
    global MAILBOX
    MAILBOX = mailbox


def sign_up(webapp, email="founder@example.com", password=DEFAULT_PASSWORD, status=303,
            verify=True):
    """Sign up (the "check your email" page); as the new member would, open the
    verification link mailed to the address (read from the SMTP server); then
    sign in: the sign-in's answer."""
    page = webapp.get("/dashboard/signup")
    form = page.forms[0]
    form["tenant_name"] = "Acme Games"
    form["email"] = email
    form["password"] = password
    sent = form.submit(status=200)
    assert "Check your email" in sent.text
    if verify:
        link = MAILBOX.last(email).link("/dashboard/verify/")
        webapp.get(link.removeprefix("http://bk.test"), status=200)  # not signed in yet
    signin = webapp.get("/dashboard/signin").forms[0]
    signin["email"], signin["password"] = email, password
    return signin.submit(status=status)


def create_app_via_form(
    webapp, name="Space Run", uris="https://game.example.com/cb\nspacerun://auth", status=303,
    **fields,
):
    page = webapp.get("/dashboard/apps/new")
    form = page.forms[1]
    form["name"] = name
    form["redirect_uris"] = uris
    form["custom_auth_endpoint"] = "http://127.0.0.1:9000/auth"
    for key, value in fields.items():
        form[key] = value
    return form.submit(status=status)


def test_sign_up_create_app_and_reveal_secrets(webapp, db, secret_box):
    response = sign_up(webapp)
    apps_page = response.follow()
    assert "No apps yet" in apps_page.text

    created = create_app_via_form(webapp)
    app_page = created.follow()
    app_id = app_page.html.find(id="app-id").text
    assert re.fullmatch(r"[a-z0-9]{8}", app_id)
    assert "Secrets stay hidden" in app_page.text

    reveal = app_page.forms[1]
    reveal["password"] = DEFAULT_PASSWORD
    revealed = reveal.submit()
    assert revealed.headers["Cache-Control"] == "no-store"
    custom_auth = revealed.html.find(id="secret-custom-auth").text
    custom_token = revealed.html.find(id="secret-custom-token").text
    assert len(custom_auth) >= 43 and len(custom_token) >= 43 and custom_auth != custom_token

    app = db.scalar(select(App).where(App.app_id == app_id))
    assert secret_box.decrypt(app.secret("custom_auth").current_ciphertext) == custom_auth
    assert app.redirect_uris == ["https://game.example.com/cb", "spacerun://auth"]
    types = set(db.scalars(select(AuditEvent.type).where(AuditEvent.tenant_id == app.tenant_id)))
    assert {"tenant.created", "app.created", "secret.revealed"} <= types


def test_reveal_needs_the_right_password(webapp):
    sign_up(webapp)
    app_page = create_app_via_form(webapp).follow()
    reveal = app_page.forms[1]
    reveal["password"] = "wrong password!"
    response = reveal.submit(status=401)
    assert "That password is not right." in response.text
    assert response.html.find(id="secret-custom-auth") is None


def test_sign_in_failure_is_generic_and_audited(webapp, db, passwords):
    member = make_member(db, passwords, email="known@example.com")
    page = webapp.get("/dashboard/signin")
    form = page.forms[0]
    form["email"] = "known@example.com"
    form["password"] = "not the password"
    wrong_password = form.submit(status=401)
    form = webapp.get("/dashboard/signin").forms[0]
    form["email"] = "unknown@example.com"
    form["password"] = "not the password"
    unknown_email = form.submit(status=401)
    message = "Email or password is incorrect."
    assert message in wrong_password.text and message in unknown_email.text
    failures = db.scalars(
        select(AuditEvent).where(AuditEvent.type == "member.sign_in_failed")
    ).all()
    assert any(e.tenant_id == member.tenant_id for e in failures)
    assert all("password" not in e.details for e in failures)


def test_sign_in_rotates_the_session_and_sign_out_ends_it(webapp, db, passwords):
    make_member(db, passwords, email="rotate@example.com")
    page = webapp.get("/dashboard/signin")
    before = webapp.cookies.get("bk_session")
    form = page.forms[0]
    form["email"] = "rotate@example.com"
    form["password"] = DEFAULT_PASSWORD
    response = form.submit(status=303)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    after = webapp.cookies.get("bk_session")
    assert after and after != before
    apps = webapp.get("/dashboard/apps")
    assert "rotate@example.com" in apps.text
    apps.forms[0].submit(status=303)
    assert webapp.get("/dashboard/apps").status_int == 303


def test_forms_refuse_posts_without_csrf_token(webapp, db, passwords):
    make_member(db, passwords, email="csrf@example.com")
    webapp.get("/dashboard/signin")
    response = webapp.post(
        "/dashboard/signin",
        {"email": "csrf@example.com", "password": DEFAULT_PASSWORD},
        status=400,
    )
    assert webapp.cookies.get("bk_session") is None or "member_id" not in response.text
    signed_in_at = select(Member.last_sign_in_at).where(Member.email == "csrf@example.com")
    assert db.scalar(signed_in_at) is None


def test_anonymous_visitors_are_sent_to_sign_in(webapp):
    response = webapp.get("/dashboard/apps", status=303)
    assert "/dashboard/signin?next=%2Fdashboard%2Fapps" in response.location


def test_another_tenants_app_is_not_found(webapp, db, passwords, secret_box):
    other = make_member(db, passwords, email="other@example.com")
    foreign_app, _ = make_app(db, secret_box, other.tenant_id)
    sign_up(webapp, email="me@example.com")
    webapp.get(f"/dashboard/apps/{foreign_app.app_id}", status=404)
    csrf = webapp.get("/dashboard/apps").forms[0]["csrf_token"].value
    webapp.post(
        f"/dashboard/apps/{foreign_app.app_id}/secrets/reveal",
        {"csrf_token": csrf, "password": DEFAULT_PASSWORD},
        status=404,
    )
    assert foreign_app.app_id not in webapp.get("/dashboard/apps").text


def test_the_apps_list_gives_created_times_with_their_utc_offset(webapp):
    sign_up(webapp)
    create_app_via_form(webapp)
    page = webapp.get("/dashboard/apps")
    assert page.html.find("th", string="Created (UTC)") is not None
    (created,) = page.html.select("#apps tbody time")
    assert dt.datetime.fromisoformat(created["datetime"]).utcoffset() == dt.timedelta(0)
    assert created.text == created["datetime"][:16].replace("T", " ")


def test_the_new_app_form_takes_a_restart_url(webapp, db):
    sign_up(webapp)
    created = create_app_via_form(webapp, restart_url="https://game.example.com/play")
    app_id = created.follow().html.find(id="app-id").text
    app = db.scalar(select(App).where(App.app_id == app_id))
    assert app.restart_url == "https://game.example.com/play"
    settings = webapp.get(f"/dashboard/apps/{app_id}/settings").forms[1]
    assert settings["restart_url"].value == "https://game.example.com/play"
    # Without one, the settings say where the state-failure page links instead.
    other = create_app_via_form(webapp, name="Other",
                                uris="spacerun://auth\nhttps://x.example.com/cb")
    other_id = other.follow().html.find(id="app-id").text
    hint = webapp.get(f"/dashboard/apps/{other_id}/settings").html.find(id="restart_url-hint")
    assert "that page links to https://x.example.com/." in hint.text


def test_invalid_redirect_uri_is_refused_with_a_message(webapp, db):
    sign_up(webapp)
    response = create_app_via_form(webapp, uris="javascript:alert(1)", status=400)
    assert "not allowed" in response.text
    assert db.execute(text("SELECT count(*) FROM apps")).scalar() == 0


def test_the_new_app_form_shows_every_error_next_to_its_field(webapp, db):
    sign_up(webapp)
    page = webapp.get("/dashboard/apps/new")
    form = page.forms[1]
    form["name"] = "   "
    form["custom_auth_endpoint"] = "ftp://files.example.com/auth"
    form["redirect_uris"] = ("javascript:alert(1)\nhttps://game.example.com/cb\n"
                             "http://evil.example.com/cb")
    form["restart_url"] = "data:text/html,hi"
    response = form.submit(status=400)
    html = response.html
    assert html.find(id="name-error").text == "The name must have 1 to 200 characters."
    assert html.find(id="custom_auth_endpoint-error").text
    assert [li.text for li in html.select("#redirect_uris-error li")] == [
        "The redirect URI scheme 'javascript' is not allowed.",
        "The redirect URI 'http://evil.example.com/cb' must use https (http is for loopback)."]
    assert html.find(id="restart_url-error").text == (
        "The restart URL scheme 'data' is not allowed.")
    for name in ("name", "custom_auth_endpoint", "redirect_uris", "restart_url"):
        assert html.find(id=name)["aria-invalid"] == "true"
        assert f"{name}-error" in html.find(id=name)["aria-describedby"]
    summary = [a["href"] for a in html.select(".error-summary a")]
    assert summary == ["#name", "#custom_auth_endpoint", "#redirect_uris", "#restart_url"]
    # What was typed stays, to be corrected.
    assert response.forms[1]["restart_url"].value == "data:text/html,hi"
    assert db.execute(text("SELECT count(*) FROM apps")).scalar() == 0


def test_a_taken_email_signs_nobody_up_and_nobody_in(webapp, db):
    sign_up(webapp, email="dup@example.com")
    webapp.reset()
    form = webapp.get("/dashboard/signup").forms[0]
    form["tenant_name"], form["email"], form["password"] = "Copy", "DUP@example.com", \
        "some other passphrase"
    response = form.submit(status=200)
    assert "Check your email" in response.text and "exists" not in response.text
    assert webapp.get("/dashboard/apps").status_int == 303  # not signed in
    assert db.execute(text("SELECT count(*) FROM members")).scalar() == 1
