"""oidc-client-ts, the browser OpenID Connect library, in Debian's chromium
against a live Bridgekeeper (issue #16): a single-page app on a loopback
origin (tests/oidc_clients/browser) signs alice in with ``signinRedirect``
at the Python example tenant endpoint, shows the profile (ID token claims
merged with UserInfo) and signs out with ``signoutRedirect`` (RP-initiated
logout, back to the app's post-logout redirect URI).

The page runs under a strict Content-Security-Policy (scripts from its own
origin only, fetches to Bridgekeeper only); the browser fixture fails the test
on any violation. A screenshot of the signed-in page lands in the test's
temporary directory.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.live import free_port, serve_wsgi
from tests.oidc_rp import ALICE_PROFILE, CLIENTS_DIR, node_binary, oidc_app
from tests.waiting import REQUEST_SECONDS

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "test-artifacts")

pytestmark = pytest.mark.integration

PAGE_DIR = os.path.join(CLIENTS_DIR, "browser")
LIBRARY = os.path.join(CLIENTS_DIR, "node_modules", "oidc-client-ts", "dist", "browser",
                       "oidc-client-ts.min.js")
CONFIG_BLOCK = re.compile(r'(<script type="application/json" id="rp-config">)'
                          r".*?(</script>)", re.S)
SPA_PATHS = ("/", "/callback", "/signed-out")  # the app's routes: one page answers them all


def rp_site(issuer: str, client_id: str, bridgekeeper: str):
    """The single-page app and oidc-client-ts's browser bundle, as a WSGI app."""
    with open(os.path.join(PAGE_DIR, "index.html"), encoding="utf-8") as page_file:
        config = json.dumps({"issuer": issuer, "clientId": client_id})
        page = CONFIG_BLOCK.sub(lambda m: m.group(1) + config + m.group(2), page_file.read())
    files = {"/app.js": os.path.join(PAGE_DIR, "app.js"),
             "/app.css": os.path.join(PAGE_DIR, "app.css"),
             "/oidc-client-ts.min.js": LIBRARY}
    policy = (f"default-src 'none'; script-src 'self'; style-src 'self'; "
              f"connect-src {bridgekeeper}; base-uri 'none'; form-action 'none'")

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path in SPA_PATHS:
            body, kind = page.encode("utf-8"), "text/html; charset=utf-8"
        elif path in files:
            with open(files[path], "rb") as served:
                body = served.read()
            kind = mimetypes.guess_type(path)[0] + "; charset=utf-8"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", kind), ("Cache-Control", "no-store"),
                                  ("Content-Security-Policy", policy)])
        return [body]

    return app


@pytest.fixture
def spa(app_settings):
    """(app, the SPA's origin) with the app registered for that origin's callback
    and signed-out pages."""
    node_binary()  # fails loudly when tests/oidc_clients' packages are missing
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with oidc_app(app_settings, origin) as oidc, \
            serve_wsgi(rp_site(oidc.issuer, oidc.client_id, oidc.base), port) as served:
        assert served == origin
        yield oidc, origin


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def leave_for(page, url_pattern: str) -> None:
    """Wait for the page to navigate to ``url_pattern``; when it does not, fail
    with what oidc-client-ts said in the page's alert (a refused discovery, say)."""
    try:
        page.wait_for_url(url_pattern)
    except PlaywrightTimeoutError:
        alert = page.locator("#error")
        said = alert.text_content() if alert.is_visible() else "(nothing in the alert)"
        pytest.fail(f"the page stayed at {page.url}; oidc-client-ts said: {said}",
                    pytrace=False)


def stored_user(page, oidc) -> dict:
    """What oidc-client-ts keeps for the signed-in user (its default store:
    sessionStorage, under ``oidc.user:{authority}:{client_id}``)."""
    raw = page.evaluate("key => sessionStorage.getItem(key)",
                        f"oidc.user:{oidc.issuer}:{oidc.client_id}")
    assert raw, "oidc-client-ts stored no user"
    return json.loads(raw)


def test_signin_redirect_profile_and_signout_redirect(page, spa):
    oidc, origin = spa
    page.goto(origin + "/")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.get_by_role("status")).to_have_text("Signed out")

    page.get_by_role("button", name="Sign in").click()  # signinRedirect()
    leave_for(page, oidc.tenant + "/auth?*")
    expect(page.get_by_role("heading", name="Sign in to Example Co.")).to_be_visible()
    page.get_by_label("User").fill("alice")
    page.get_by_label("Passphrase").fill("wonderland")
    page.get_by_role("button", name="Sign in").click()

    # Back on /callback: signinRedirectCallback() checked the state, exchanged the
    # code with its PKCE verifier, read the ID token and loaded UserInfo.
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Signed in as \S+$"))
    assert page.url == origin + "/"
    user = stored_user(page, oidc)
    profile = user["profile"]
    assert page.get_by_role("status").text_content() == f"Signed in as {profile['sub']}"
    assert profile["iss"] == oidc.issuer and profile["aud"] == oidc.client_id
    for claim in ("name", "given_name", "family_name", "preferred_username", "email"):
        assert profile[claim] == ALICE_PROFILE[claim], claim
    assert profile["email_verified"] is True
    assert user["scope"].split() == ["openid", "profile", "email"]
    assert user["token_type"].lower() == "bearer" and user["id_token"]
    expect(page.locator("#profile")).to_contain_text('"name": "Alice Liddell"')
    expect(page.locator("#profile")).to_contain_text('"email": "alice@example.com"')
    os.makedirs(ARTIFACTS, exist_ok=True)  # beside the other browser tests' screenshots
    shot = os.path.join(ARTIFACTS, "oidc-client-ts-signed-in.png")
    page.screenshot(path=shot, full_page=True)
    assert os.path.getsize(shot) > 0

    access_token = user["access_token"]
    userinfo = f"{oidc.issuer}/userinfo"
    bearer = {"Authorization": f"Bearer {access_token}"}
    assert httpx.get(userinfo, headers=bearer, timeout=REQUEST_SECONDS).status_code == 200

    page.get_by_role("button", name="Sign out").click()  # signoutRedirect()
    # The end-session endpoint sent the browser back to /signed-out with the state,
    # which signoutRedirectCallback() accepted.
    expect(page.get_by_role("status")).to_have_text("Signed out")
    assert page.url == origin + "/"
    assert page.evaluate("key => sessionStorage.getItem(key)",
                         f"oidc.user:{oidc.issuer}:{oidc.client_id}") is None
    expect(page.get_by_role("alert")).to_be_hidden()
    # The session is over at Bridgekeeper too, not only in the page.
    ended = httpx.get(userinfo, headers=bearer, timeout=REQUEST_SECONDS)
    assert ended.status_code == 401
    assert 'error="invalid_token"' in ended.headers["WWW-Authenticate"]
    assert page.errors == []
