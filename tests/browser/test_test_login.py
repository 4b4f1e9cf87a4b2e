"""The test login in a real browser (Playwright + Debian's chromium): sign up,
create an app, point it at the Python example tenant endpoint, run the test
login from the dashboard and see each step and the success; then a wrong
passphrase and its reason. Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import os
import time
import uuid

import jwt
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine

from tests.live import forget_tenants_of, live_server, python_example, serve_wsgi

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
PASSWORD = "correct horse battery staple"


def shot(page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"test-login-{name}.png"), full_page=True)


@pytest.fixture
def dashboard(app_settings):
    """The live server and a fresh email; the tenant signed up with it is deleted after."""
    email = f"test-login-{uuid.uuid4().hex[:10]}@example.com"
    engine = create_engine(app_settings["sqlalchemy.url"])
    try:
        with live_server(app_settings) as base:
            yield base, email
    finally:
        forget_tenants_of(engine, email)
        engine.dispose()


def test_test_login_against_the_example_endpoint(browser, dashboard, mailbox):
    base, email = dashboard
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(base + "/dashboard/signup")
    page.get_by_label("Organisation name").fill("Acme Games")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # The same "check your email" page for a new and a taken address; then sign in.
    page.get_by_role("heading", name="Check your email").wait_for()
    page.goto(base + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/apps")
    # Verify the address with the link the SMTP server received.
    page.goto(base + mailbox.verification_path(email))
    page.wait_for_url("**/dashboard/apps")
    page.get_by_role("link", name="Create your first app").click()
    page.get_by_label("Name").fill("Space Run")
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url("**/secrets")
    page.get_by_label("Your password").first.fill(PASSWORD)
    page.get_by_role("button", name="Reveal secrets").click()
    secret = page.inner_text("#secret-custom-auth").strip()

    with serve_wsgi(python_example(secret)) as tenant:
        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Custom-auth endpoint").fill(tenant + "/auth")
        page.get_by_label("Redirect URIs", exact=True).fill("http://127.0.0.1/cb")
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status")).to_contain_text("Settings saved.")

        page.get_by_role("link", name="Test login").click()
        expect(page.locator("#endpoint")).to_have_text(tenant + "/auth")
        page.get_by_label("User ID").fill("alice")
        page.get_by_label("Passphrase").fill("wonderland")
        page.get_by_role("button", name="Run test login").click()
        expect(page.locator("#result")).to_contain_text("success")
        expect(page.locator("#result-user")).to_have_text("1001")
        expect(page.locator("#answer-status")).to_have_text("302")
        expect(page.locator("#answer-verdict")).to_have_text("token")
        request_url = page.inner_text("#request-url")
        assert request_url.startswith(tenant + "/auth?") and "masked" in request_url
        expect(page.locator("#answer-location")).to_contain_text("masked")
        assert "wonderland" not in page.content() and secret not in page.content()
        # Every check of the returned token passed.
        assert page.locator("table.checks tr.check-fail").count() == 0
        assert page.locator("table.checks tr.check-pass").count() >= 10
        shot(page, "success")

        page.get_by_label("Passphrase").fill("not it")
        page.get_by_role("button", name="Run test login").click()
        expect(page.locator("#result-reason")).to_have_text("tenant_denied")
        expect(page.locator("#result")).to_contain_text("Unknown user or wrong passphrase")
        shot(page, "denied")

    # The token debugger on an expired token signed with the app's secret.
    expired = jwt.encode({"user_id": "alice", "iat": int(time.time()) - 300,
                          "exp": int(time.time()) - 120}, secret, algorithm="HS256")
    page.get_by_role("link", name="Token debugger").click()
    page.get_by_label("Token", exact=True).fill(expired)
    page.get_by_role("button", name="Check the token").click()
    expect(page.locator("#verdict-reason")).to_have_text("token_expired")
    expect(page.locator("#token-claims")).to_contain_text('"user_id": "alice"')
    shot(page, "debugger")

    # Both runs are in the audit log, and nothing else happened: no login events.
    page.get_by_role("link", name="Audit log").click()
    events = page.locator("#events tbody")
    expect(events).to_contain_text("diagnostics.test_login")
    assert "login.succeeded" not in events.inner_text()
    page.close()
