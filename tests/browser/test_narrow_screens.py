"""Every dashboard page on a phone (390 px wide), and the pages that a link
reaches also at 768, 1024 and 1280 px: no page scrolls sideways, no link,
button, field or value hides beyond the window's edge (in a table that
scrolls, say), every app tab shows, and the signed-in member stays named.
Screenshots land in ``test-artifacts/phone-*.png`` and
``test-artifacts/desktop-*.png`` for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.audit.types import Outcome
from tests.browser.test_dashboard_pages import (  # noqa: F401 (site is a fixture)
    PASSWORD,
    add_activity,
    shot,
    sign_up_and_create_app,
    site,
)
from tests.browser.test_webhooks_pages import _fail_once

pytestmark = pytest.mark.integration

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
LAPTOP = {"width": 1024, "height": 768}
DESKTOP = {"width": 1280, "height": 900}

# Interactive elements and values whose box lies (partly) beyond the window's
# left or right edge; off-screen skip links and visually hidden labels aside.
BEYOND_THE_EDGE = """() => {
  const width = window.innerWidth, out = [];
  for (const el of document.querySelectorAll("a, button, input, select, textarea, summary, code")) {
    if (el.closest(".skip, .visually-hidden")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.left < -0.5 || box.right > width + 0.5) {
      const what = (el.id || el.getAttribute("name") || el.textContent || "").trim();
      out.push(`<${el.tagName.toLowerCase()}> ${what.slice(0, 40)}: ${Math.round(box.left)}..`
               + `${Math.round(box.right)} px`);
    }
  }
  return out;
}"""


def fits(page, name: str, prefix: str | None = "phone") -> None:
    """The page is no wider than the window and shows everything inside it
    (then a screenshot, unless ``prefix`` is None)."""
    page.wait_for_load_state()
    scroll_width, inner_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{name}: {scroll_width} px wide in {inner_width} px"
    assert page.evaluate(BEYOND_THE_EDGE) == [], f"{name} hides things sideways"
    if prefix:
        shot(page, name, prefix)


def fits_every_width(page, name: str) -> None:
    """As ``fits`` on a phone, a tablet, a laptop and a desktop (the same page, reloaded)."""
    fits(page, name)
    for viewport, prefix in ((TABLET, None), (LAPTOP, None), (DESKTOP, "desktop")):
        page.set_viewport_size(viewport)
        page.reload()
        fits(page, name, prefix)
    page.set_viewport_size(PHONE)
    page.reload()


def add_attempt(engine, app_id: str) -> None:
    """One failed login attempt, as the login path records it."""
    now = dt.datetime.now(dt.UTC)
    attempt = {"attempt_id": uuid.uuid4().hex, "flow": "redirect"}
    with Session(engine) as session:
        app = session.scalar(select(App).where(App.app_id == app_id))
        for seconds, type_, outcome, reason in (
                (3, "login.started", Outcome.SUCCESS, None),
                (1, "login.failed", Outcome.FAILURE, "tenant_denied")):
            session.add(AuditEvent(tenant_id=app.tenant_id, app_id=app_id, type=type_,
                                   outcome=outcome, reason=reason, details=attempt,
                                   at=now - dt.timedelta(seconds=seconds), ip="203.0.113.7",
                                   user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"))
        session.commit()


def test_every_dashboard_page_fits_a_phone(browser, site, mailbox):  # noqa: F811
    base, email, engine = site
    page = browser.new_page(viewport=PHONE)
    for name in ("signin", "signup"):
        page.goto(f"{base}/dashboard/{name}")
        fits_every_width(page, name)
    app_id = sign_up_and_create_app(page, base, email, mailbox, prefix="phone")
    fits(page, "secrets-new-app")
    # The signed-in member stays named on a phone.
    expect(page.locator(".who")).to_be_visible()
    expect(page.locator(".who")).to_contain_text(email)
    # Every app tab shows, none hidden in a strip that scrolls.
    tabs = page.locator("nav.tabs a")
    expect(tabs).to_have_count(8)
    for index in range(8):
        expect(tabs.nth(index)).to_be_in_viewport()

    page.get_by_label("Your password").first.fill(PASSWORD)
    page.get_by_role("button", name="Reveal secrets").click()
    secret = page.inner_text("#secret-custom-auth").strip()
    fits(page, "secrets-revealed")

    add_activity(engine, app_id)
    add_attempt(engine, app_id)
    app = f"{base}/dashboard/apps/{app_id}"
    for name, url in (("apps", f"{base}/dashboard/apps"), ("app-new", f"{base}/dashboard/apps/new"),
                      ("overview", app), ("overview-30d", app + "?range=30d"),
                      ("settings", app + "/settings"), ("secrets", app + "/secrets"),
                      ("users", app + "/users"), ("user", None),
                      ("audit", app + "/audit"), ("attempts", app + "/audit?view=attempts"),
                      ("attempt", None), ("debugger", app + "/debugger"),
                      ("test-login", app + "/test-login"), ("webhooks", app + "/webhooks"),
                      ("api-keys", f"{base}/dashboard/api-keys"),
                      ("members", f"{base}/dashboard/members"),
                      ("not-found", f"{base}/dashboard/apps/{app_id}/nowhere")):
        if name == "user":
            page.goto(app + "/users")
            page.get_by_role("link", name="pilot03").click()
        elif name == "attempt":
            page.locator("#attempts tbody a").first.click()
        else:
            page.goto(url)
        fits_every_width(page, name)

    page.goto(f"{base}/dashboard/apps/new")
    page.get_by_label("Redirect URIs", exact=True).fill("javascript:alert(1)\nhttp://evil.example.com/cb")
    page.get_by_label("Restart URL").fill("javascript:history.back()")
    page.get_by_role("button", name="Create app").click()
    expect(page.locator(".error-summary a")).to_have_count(3)  # name, redirect URIs, restart URL
    expect(page.get_by_label("Restart URL")).to_have_attribute("aria-invalid", "true")
    fits(page, "app-new-errors")

    page.goto(app)
    page.get_by_text("Show the numbers as a table").click()
    fits(page, "overview-table")

    page.goto(app + "/debugger")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    token = jwt.encode({"user_id": "alice", "iat": now - 300, "exp": now - 120}, secret,
                       algorithm="HS256")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Check the token").click()
    expect(page.locator("#verdict-reason")).to_have_text("token_expired")
    fits(page, "debugger-verdict")

    page.goto(app + "/test-login")
    page.get_by_role("button", name="Run test login").click()
    expect(page.locator("#result-reason")).to_have_text("tenant_unreachable")
    fits(page, "test-login-result")

    page.goto(app + "/webhooks")
    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hooks/bridgekeeper-events")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#new-secret")).to_be_visible()
    fits(page, "webhook-added")
    _fail_once(engine, app_id)
    page.get_by_role("link", name="Open the webhook").click()
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    fits_every_width(page, "webhook")

    page.goto(f"{base}/dashboard/api-keys")
    page.get_by_label("Name").fill("CI deploy")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Create key").click()
    fits(page, "api-key-new")

    page.goto(f"{base}/dashboard/members")
    page.get_by_label("Email").fill("a.rather.long.address.for.a.teammate@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Create invitation link").click()
    link = page.inner_text("#invite-link")
    fits(page, "members-invited")

    invitee = browser.new_page(viewport=PHONE)
    invitee.goto(link)
    fits(invitee, "invite")
    # An end user's dead end: a login whose state is unknown.
    invitee.goto(f"{base}/v1/apps/{app_id}/callback?state=junk&token=x")
    fits(invitee, "login-error")
    invitee.close()
    page.close()
