"""The hosted sign-in form in a real browser: Debian's chromium driven by Playwright.

Screenshots land in ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import os

import pytest

from tests.flows import pkce_pair, query_of
from tests.live import committed_app, live_server, point_app_at, python_example, serve_wsgi

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")





def client_page(environ, start_response):
    """The app's redirect target: shows what it received."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>App</title><h1>Back in the app</h1>"]


@pytest.fixture
def hosted_app(app_settings):
    with serve_wsgi(client_page) as client_base, committed_app(
        app_settings, redirect_uris=["http://127.0.0.1/cb"], backchannel=True,
        hosted_form={"title": "Sign in to Space Run", "fields": [
            {"name": "id", "label": "Pilot name", "type": "text"},
            {"name": "passphrase", "label": "Passphrase", "type": "password"}]},
    ) as (app, secrets), serve_wsgi(python_example(secrets["custom_auth"])) as tenant, \
            live_server(app_settings) as base:
        point_app_at(app_settings, app, tenant + "/auth")
        yield app, base, client_base + "/cb"  # listed as http://127.0.0.1/cb: any port


def _open(browser, base, app, redirect_uri):
    page = browser.new_page()
    _verifier, challenge = pkce_pair()
    page.goto(f"{base}/v1/apps/{app.app_id}/login?redirect_uri={redirect_uri}"
              f"&code_challenge={challenge}&state=from-the-app")
    return page


def test_good_passphrase_lands_on_the_client_with_a_code(browser, hosted_app):
    app, base, redirect_uri = hosted_app
    page = _open(browser, base, app, redirect_uri)
    assert page.title() == "Sign in to Space Run"
    # Labels name the inputs and the first field has focus.
    assert page.get_by_label("Pilot name").is_visible()
    assert page.evaluate("document.activeElement.id") == "field-id"
    page.get_by_label("Pilot name").fill("alice")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "field-passphrase"
    page.get_by_label("Passphrase").fill("wonderland")
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "hosted-form-filled.png"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(redirect_uri + "?*")
    received = query_of(page.url)
    assert received["state"] == "from-the-app" and len(received["code"]) >= 43
    assert page.inner_text("h1") == "Back in the app"
    page.close()


def test_bad_passphrase_shows_the_error(browser, hosted_app):
    app, base, redirect_uri = hosted_app
    page = _open(browser, base, app, redirect_uri)
    page.get_by_label("Pilot name").fill("alice")
    page.get_by_label("Passphrase").fill("not it")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    alert = page.get_by_role("alert")
    assert "Sign-in failed" in alert.inner_text()
    assert page.get_by_label("Pilot name").input_value() == "alice"
    assert page.get_by_label("Passphrase").input_value() == ""
    assert page.evaluate("document.activeElement.id") == "field-passphrase"
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "hosted-form-refused.png"))
    page.close()
