"""The JavaScript SDK in a real browser: examples/demo/index.html, loading
``/v1/sdk.js`` from a live Bridgekeeper, signs alice in against the Python
example endpoint — redirect, popup, the hosted form and the in-app form — in
Debian's chromium.

Screenshots land in ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from playwright.sync_api import expect

from tests.live import (
    committed_app,
    live_server,
    point_app_at,
    python_example,
    serve_wsgi,
)

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
DEMO_PAGE = os.path.join(ROOT, "examples", "demo", "index.html")

CONFIG_BLOCK = re.compile(r'(<script type="application/json" id="bridgekeeper-config">)'
                          r".*?(</script>)", re.S)


def demo_app(base_url: str, app_id: str):
    """The demo page, configured for this server and app, at ``/`` (its redirect URI)."""
    with open(DEMO_PAGE, encoding="utf-8") as page_file:
        config = json.dumps({"baseUrl": base_url, "appId": app_id})
        page = CONFIG_BLOCK.sub(lambda m: m.group(1) + config + m.group(2), page_file.read())

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Cache-Control", "no-store")])
        return [page.encode("utf-8")]

    return app


@pytest.fixture
def demo(app_settings):
    with committed_app(app_settings, redirect_uris=["http://127.0.0.1/"],
                       backchannel=True) as (app, secrets), \
            serve_wsgi(python_example(secrets["custom_auth"])) as tenant, \
            live_server(app_settings) as base, \
            serve_wsgi(demo_app(base, app.app_id)) as demo_base:
        point_app_at(app_settings, app, tenant + "/auth")
        yield demo_base + "/", tenant


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def open_demo(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.get_by_role("status")).to_have_text("Signed out")


def sign_in_at_tenant(page, user: str, passphrase: str) -> None:
    """The Python example's own sign-in page."""
    expect(page.get_by_role("heading", name="Sign in to Example Co.")).to_be_visible()
    page.get_by_label("User").fill(user)
    page.get_by_label("Passphrase").fill(passphrase)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name))


def test_redirect_login_end_to_end(page, demo):
    url, tenant = demo
    open_demo(page, url)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(tenant + "/auth?*")
    sign_in_at_tenant(page, "alice", "wonderland")
    # Back on the demo: the SDK checked the state, exchanged the code (PKCE)…
    expect(page.get_by_role("status")).to_have_text("Signed in as 1001")
    expect(page.locator("#external-id")).to_have_text("1001")
    # …and took the code and state out of the address bar.
    assert page.url == url
    page.get_by_role("button", name="Load my profile").click()
    expect(page.locator("#profile")).to_contain_text('"plan": "pro"')
    screenshot(page, "js-sdk-demo-signed-in.png")
    # The session is kept in sessionStorage: a reload keeps the user.
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Signed in as 1001")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.errors == []


def test_hosted_form_login(page, demo):
    """login({hosted: true}): Bridgekeeper's own sign-in form, then back with a code."""
    url, _tenant = demo
    open_demo(page, url)
    page.get_by_role("button", name="Sign in on the hosted form").click()
    page.wait_for_url("**/v1/apps/*/login?*")
    form_url = page.url
    assert "redirect_uri=" in form_url and "code_challenge=" in form_url
    page.get_by_label("User ID").fill("alice")
    page.get_by_label("Passphrase").fill("not it")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    page.get_by_label("Passphrase").fill("wonderland")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_have_text("Signed in as 1001")
    assert page.url == url
    screenshot(page, "js-sdk-demo-hosted.png")
    assert page.errors == []


def test_redirect_refusal_is_shown_with_its_reason(page, demo):
    url, tenant = demo
    open_demo(page, url)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(tenant + "/auth?*")
    sign_in_at_tenant(page, "alice", "not it")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("access_denied / tenant_denied")
    expect(alert).to_contain_text("Unknown user or wrong passphrase")
    expect(page.get_by_role("status")).to_have_text("Signed out")
    assert "error=" not in page.url and "state=" not in page.url
    screenshot(page, "js-sdk-demo-refused.png")


def test_popup_login(page, demo):
    url, _tenant = demo
    open_demo(page, url)
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Sign in in a popup").click()
    popup = opened.value
    sign_in_at_tenant(popup, "alice", "wonderland")
    expect(page.get_by_role("status")).to_have_text("Signed in as 1001")
    if not popup.is_closed():  # the SDK closes it once it has read the code
        popup.wait_for_event("close")
    assert page.url == url  # the page never left
    assert page.errors == []


def test_in_app_form_across_origins(page, demo):
    url, _tenant = demo
    open_demo(page, url)
    form = page.locator("#inapp")
    form.get_by_label("User").fill("alice")
    form.get_by_label("Passphrase").fill("nope")
    form.get_by_role("button", name="Sign in here").click()
    expect(page.get_by_role("alert")).to_contain_text("access_denied / tenant_denied")
    form.get_by_label("Passphrase").fill("wonderland")
    form.get_by_role("button", name="Sign in here").click()
    expect(page.get_by_role("status")).to_have_text("Signed in as 1001")
    expect(page.get_by_role("alert")).to_be_hidden()
    screenshot(page, "js-sdk-demo-inapp.png")
    assert page.errors == []
