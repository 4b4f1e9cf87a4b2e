"""The whole journey in one headless Chromium (Playwright + Debian's chromium):
sign up, create an app, reveal its secret, point it at the example tenant
server, log a user in through that tenant, and find the user with its custom
data, the audit events and the chart in the dashboard.

The live server drains login events into PostgreSQL itself
(``saas.sync.embedded``), as ``make run`` does. Screenshots of every page land
in ``test-artifacts/journey-*.png``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine

from saas.config import configure
from tests.flows import pkce_pair, query_of
from tests.live import _serving, forget_tenants_of, free_port, python_example, serve_wsgi

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")

PASSWORD = "correct horse battery staple"
SYNC_WAIT = 10.0


@contextlib.contextmanager
def live_server_with_sync(settings: dict) -> Iterator[str]:
    """``tests.live.live_server`` with the embedded sync on, stopped afterwards
    (its thread would otherwise keep draining this run's stream)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = configure(dict(settings, **{"saas.public_base_url": base,
                                      "saas.sync.embedded": "true"})).make_wsgi_app()
    try:
        with _serving(app, port):
            yield base
    finally:
        app.registry["saas.sync.embedded_stop"].set()
        app.registry["saas.db_engine"].dispose()


def client_page(environ, start_response):
    """The client app's redirect target."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>Space Run</title><h1>Back in the app</h1>"]


def shot(page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"journey-{name}.png"), full_page=True)


def reload_until(page, locator, text_: str) -> None:
    """Reload while the embedded sync drains the login's events (about a second)."""
    deadline = time.monotonic() + SYNC_WAIT
    while text_ not in " ".join(locator.all_inner_texts()):
        assert time.monotonic() < deadline, f"{text_!r} never appeared on {page.url}"
        time.sleep(0.5)
        page.reload()




@pytest.fixture
def journey(app_settings):
    """The live server, the client page, and the email of the tenant signed up in
    the browser (the tenant and its audit events are deleted after)."""
    email = f"journey-{uuid.uuid4().hex[:10]}@example.com"
    engine = create_engine(app_settings["sqlalchemy.url"])
    try:
        with live_server_with_sync(app_settings) as base, serve_wsgi(client_page) as client:
            yield base, client, email
    finally:
        forget_tenants_of(engine, email)
        engine.dispose()


def test_sign_up_connect_the_example_tenant_log_in_and_see_it_all(browser, journey, mailbox):
    base, client, email = journey
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # Sign up and create an app.
    page.goto(base + "/dashboard/signup")
    page.get_by_label("Organisation name").fill("Acme Games")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "1-signup")
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
    shot(page, "2-new-app")
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url("**/secrets")
    app_id = page.inner_text("#app-id").strip()

    # Reveal the custom-auth secret (password again) and start the tenant with it.
    page.get_by_label("Your password").first.fill(PASSWORD)
    page.get_by_role("button", name="Reveal secrets").click()
    expect(page.locator("#secret-custom-auth")).to_be_visible()
    secret = page.inner_text("#secret-custom-auth").strip()
    assert len(secret) >= 32
    shot(page, "3-secrets-revealed")

    with serve_wsgi(python_example(secret)) as tenant:
        # Point the app at the tenant and allow the client's redirect URI.
        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Custom-auth endpoint").fill(tenant + "/auth")
        page.get_by_label("Redirect URIs", exact=True).fill("http://127.0.0.1/cb")
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status")).to_contain_text("Settings saved.")
        expect(page.get_by_label("Custom-auth endpoint")).to_have_value(tenant + "/auth")
        shot(page, "4-settings-saved")

        # The end user logs in through the example tenant's own form.
        user = browser.new_page(viewport={"width": 1280, "height": 900})
        verifier, challenge = pkce_pair()
        redirect_uri = client + "/cb"  # listed as http://127.0.0.1/cb: any loopback port
        user.goto(f"{base}/v1/apps/{app_id}/authorize?redirect_uri={redirect_uri}"
                  f"&code_challenge={challenge}&state=x")
        assert user.url.startswith(tenant + "/auth?")
        user.get_by_label("User").fill("alice")
        user.get_by_label("Passphrase").fill("wonderland")
        shot(user, "5-tenant-form")
        user.get_by_role("button", name="Sign in").click()
        user.wait_for_url(redirect_uri + "?*")
        received = query_of(user.url)
        assert received["state"] == "x" and received["code"]
        expect(user.locator("h1")).to_have_text("Back in the app")
        shot(user, "6-client-with-code")
        user.close()

    tokens = httpx.post(f"{base}/v1/apps/{app_id}/token", data={
        "grant_type": "authorization_code", "code": received["code"],
        "redirect_uri": redirect_uri, "code_verifier": verifier}, timeout=10)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"]

    # The user, once the embedded sync has written it.
    page.get_by_role("link", name="Users").click()
    reload_until(page, page.locator("#users tbody"), "1001")
    shot(page, "7-users")
    page.get_by_role("link", name="1001").click()
    custom = page.locator("#user-custom")
    expect(custom).to_contain_text('"plan"')
    expect(custom).to_contain_text('"pro"')
    expect(page.locator("#user-status")).to_have_text("active")
    shot(page, "8-user")

    # The audit events.
    page.get_by_role("link", name="Audit log").click()
    events = page.locator("#events tbody")
    reload_until(page, events, "token.issued")
    reload_until(page, events, "login.succeeded")
    shot(page, "9-audit")

    # The chart counts the login.
    page.get_by_role("link", name="Overview").click()
    chart = page.locator("svg#login-chart")
    expect(chart).to_be_visible()
    assert int(page.inner_text("#total-logins")) >= 1
    assert "1 successful login" in chart.locator("desc").text_content()
    # One bar stands up (its title names the hour and the count), one table row says 1.
    bars = [(bar.get_attribute("class"), float(bar.get_attribute("height")),
             bar.locator("title").text_content())
            for bar in chart.locator("rect.bar").all()]
    tall = [bar for bar in bars if bar[1] > 0]
    assert len(tall) == 1 and "bar-logins" in tall[0][0], tall
    assert "1" in tall[0][2], tall
    counts = [row.locator("td").all_text_contents()  # in a closed <details>
              for row in page.locator("#chart-table tbody tr").all()]
    assert counts.count(["1", "0"]) == 1, counts
    shot(page, "10-overview")
    page.close()
