"""A dashboard account's whole life with second factors, in headless Chromium:
sign up → verification link (from the SMTP server) → TOTP enrolment (the code
computed here with pyotp) → sign out → sign in with a code → sign out → sign
in with a recovery code → a passkey added and used to sign in (Chromium's
virtual authenticator, DevTools ``WebAuthn`` domain) → password reset (link
from mail) → change email (link from mail). Screenshots land in
``test-artifacts/factors-*.png``.

The server's public URL is ``http://localhost:PORT``: WebAuthn needs a domain
as the relying party id (an IP address is refused), and localhost is a
secure context without TLS.
"""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine

from saas.config import configure
from tests.live import _serving, forget_tenants_of, free_port

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"


def shot(page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"factors-{name}.png"), full_page=True)


@pytest.fixture
def server(app_settings):
    """The dashboard at http://localhost:PORT; the tenants signed up are deleted after."""
    emails: list[str] = []
    port = free_port()
    base = f"http://localhost:{port}"
    app = configure(dict(app_settings, **{"saas.public_base_url": base})).make_wsgi_app()
    engine = create_engine(app_settings["sqlalchemy.url"])
    try:
        with _serving(app, port):
            yield base, emails
    finally:
        app.registry["saas.db_engine"].dispose()
        for email in emails:
            forget_tenants_of(engine, email)
        engine.dispose()


def path_of(url: str) -> str:
    return urlsplit(url).path


def sign_in_with_password(page, base: str, email: str, password: str) -> None:
    page.goto(base + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/signin/second-factor")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/dashboard/signin")


def test_totp_recovery_codes_passkeys_reset_and_email_change(browser, server, mailbox):
    base, emails = server
    email = f"factors-{uuid.uuid4().hex[:10]}@example.com"
    new_email = f"factors-new-{uuid.uuid4().hex[:10]}@example.com"
    emails += [email, new_email]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # Sign up and verify the address with the mailed link.
    page.goto(base + "/dashboard/signup")
    page.get_by_label("Organisation name").fill("Factor Games")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    page.goto(base + mailbox.verification_path(email))
    page.get_by_role("heading", name="Your email address is verified").wait_for()
    page.goto(base + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/apps")

    # TOTP: the QR code and the key on the page, the code computed here.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="Authenticator app, passkeys and recovery codes").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator("#totp-qr svg")).to_be_visible()
    secret = page.inner_text("#totp-secret").strip()
    shot(page, "1-totp-enrolment")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-code-list li")).to_have_count(10)
    codes = [c.strip() for c in page.locator("#recovery-code-list li").all_inner_texts()]
    shot(page, "2-recovery-codes")

    # Sign out; sign in with the password and then a code (of the next step:
    # the enrolment's step is spent).
    sign_out(page)
    sign_in_with_password(page, base, email, PASSWORD)
    shot(page, "3-second-step")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard/apps")

    # Sign out; sign in with a recovery code.
    sign_out(page)
    sign_in_with_password(page, base, email, PASSWORD)
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard/apps")

    # A passkey, with Chromium's virtual authenticator (a platform one with
    # user verification, as a laptop's fingerprint reader).
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})["authenticatorId"]
    page.goto(base + "/dashboard/account/second-factor")
    page.get_by_label("Name of the new passkey").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkey-list")).to_contain_text("Test laptop")
    credentials = cdp.send("WebAuthn.getCredentials",
                           {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1
    shot(page, "4-passkey-added")

    sign_out(page)
    sign_in_with_password(page, base, email, PASSWORD)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/dashboard/apps")
    page.goto(base + "/dashboard/account/second-factor")
    expect(page.locator("#passkey-list")).not_to_contain_text("never")  # last used: now
    sign_out(page)

    # Password reset from the mailed link, then sign in with the new password
    # and the passkey.
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    reset = mailbox.wait_for(email, count=2)[-1]
    page.goto(base + path_of(reset.link("/dashboard/reset/")))
    page.get_by_label("New password").fill(NEW_PASSWORD)
    shot(page, "5-reset")
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url("**/dashboard/signin")
    sign_in_with_password(page, base, email, NEW_PASSWORD)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/dashboard/apps")

    # Change the email: the link goes to the new address.
    page.goto(base + "/dashboard/account")
    page.get_by_label("New email address").fill(new_email)
    page.get_by_label("Current password").first.fill(NEW_PASSWORD)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status").first).to_contain_text(new_email)
    (change,) = mailbox.wait_for(new_email)
    page.goto(base + path_of(change.link("/dashboard/email/confirm/")))
    page.get_by_role("button", name=f"Use {new_email}").click()
    page.wait_for_url("**/dashboard/account")
    expect(page.locator(".lead").first).to_contain_text(new_email)
    shot(page, "6-email-changed")
    context.close()
