"""The dashboard in a real browser (Debian's chromium driven by Playwright):
sign up, create an app, edit its settings, see the overview chart, and walk
the other pages. Screenshots land in ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.audit.types import Outcome
from saas.tenants.models import Member, Tenant
from saas.users.models import EndUser, end_user_id
from tests.live import live_server

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")

PASSWORD = "correct horse battery staple"




@pytest.fixture
def site(app_settings):
    """A live server, and the email of the tenant the test signs up (deleted after)."""
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    engine = create_engine(app_settings["sqlalchemy.url"])
    try:
        with live_server(app_settings) as base:
            yield base, email, engine
    finally:
        with Session(engine) as session:
            tenant = select(Member.tenant_id).where(Member.email == email).scalar_subquery()
            session.execute(delete(Tenant).where(Tenant.id == tenant))
            session.commit()
        engine.dispose()


def shot(page, name: str, prefix: str = "dashboard") -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"{prefix}-{name}.png"), full_page=True)


def sign_up_and_create_app(page, base: str, email: str, mailbox,
                           prefix: str = "dashboard") -> str:
    page.goto(base + "/dashboard/apps")
    page.wait_for_url("**/dashboard/signin?next=*")
    shot(page, "signin", prefix)
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Organisation name").fill("Acme Games")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # The same "check your email" page for a new and a taken address; then sign in.
    page.get_by_role("heading", name="Check your email").wait_for()
    page.goto(base + mailbox.verification_path(email))  # the link mailed to the address
    page.goto(base + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/apps")
    shot(page, "apps-empty", prefix)
    page.get_by_role("link", name="Create your first app").click()
    page.get_by_label("Name").fill("Space Run")
    page.get_by_label("Custom-auth endpoint").fill("http://127.0.0.1:9/auth")
    page.get_by_label("Redirect URIs", exact=True).fill("https://game.example.com/cb\nspacerun://auth")
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url("**/secrets")
    return page.inner_text("#app-id")


def add_activity(engine, app_id: str) -> None:
    """Logins, failures and users as the sync workers would have written them."""
    now = dt.datetime.now(dt.UTC)
    reasons = ["tenant_denied", "tenant_denied", "token_expired", "user_disabled",
               "tenant_unreachable"]
    with Session(engine) as session:
        app = session.scalar(select(App).where(App.app_id == app_id))
        for hour in range(24 * 12):
            at = now - dt.timedelta(hours=hour, minutes=7)
            logins = (hour * 7) % 11 + (4 if 8 <= at.hour <= 20 else 0)
            for n in range(logins if hour < 24 else logins // 3):
                session.add(AuditEvent(tenant_id=app.tenant_id, app_id=app_id,
                                       type="login.succeeded", outcome=Outcome.SUCCESS,
                                       external_id=f"pilot{n}", at=at))
            if hour % 3 == 0:
                session.add(AuditEvent(tenant_id=app.tenant_id, app_id=app_id,
                                       type="login.failed", outcome=Outcome.FAILURE,
                                       reason=reasons[hour % len(reasons)], at=at,
                                       ip="203.0.113.7"))
        for n in range(12):
            external_id = f"pilot{n:02d}"
            session.add(EndUser(id=end_user_id(app.id, external_id), app_id=app.id,
                                external_id=external_id, custom={"plan": "gold", "level": n},
                                profile={"name": f"Pilot {n}", "locale": "en-GB"},
                                disabled=n == 3, last_login_at=now - dt.timedelta(hours=n)))
        session.commit()


def test_sign_up_create_an_app_edit_settings_and_see_the_chart(browser, site, mailbox):
    base, email, engine = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    app_id = sign_up_and_create_app(page, base, email, mailbox)
    shot(page, "secrets")

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Redirect URIs", exact=True).fill(
        "https://game.example.com/cb\njavascript:alert(1)\nhttp://evil.example.com/cb")
    page.get_by_label("Access-token lifetime (seconds)").fill("5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert").first).to_contain_text("Some settings need another look")
    expect(page.locator("#redirect_uris-error li")).to_have_count(2)
    expect(page.get_by_label("Redirect URIs", exact=True)).to_have_attribute("aria-invalid", "true")
    shot(page, "settings-errors")

    page.get_by_label("Redirect URIs", exact=True).fill("https://game.example.com/cb\nspacerun://auth")
    page.get_by_label("Access-token lifetime (seconds)").fill("600")
    page.get_by_label("Require bound tokens").check()
    page.get_by_label("Back-channel logins").check()
    page.get_by_label("Title").fill("Sign in to Space Run")
    page.get_by_label("Field 1 name").fill("id")
    page.get_by_label("Field 1 label").fill("Pilot name")
    page.get_by_label("Field 2 name").fill("passphrase")
    page.get_by_label("Field 2 label").fill("Passphrase")
    page.get_by_label("Field 2 type").select_option("password")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved.")
    expect(page.get_by_label("Access-token lifetime (seconds)")).to_have_value("600")
    shot(page, "settings-saved")

    add_activity(engine, app_id)
    page.get_by_role("link", name="Overview").click()
    chart = page.locator("svg#login-chart")
    expect(chart).to_be_visible()
    assert chart.locator("title").first.text_content().startswith("Logins and failures per hour")
    expect(page.get_by_role("img", name="Logins and failures per hour")).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(48)
    assert int(page.inner_text("#total-logins")) > 0
    expect(page.locator("#failure-reasons li").first).to_contain_text("tenant_denied")
    shot(page, "overview-24h")
    page.get_by_role("link", name="Last 30 days").click()
    expect(chart.locator("rect.bar")).to_have_count(60)
    page.get_by_text("Show the numbers as a table").click()
    expect(page.locator("#chart-table tbody tr")).to_have_count(30)
    shot(page, "overview-30d")
    page.close()


def copies(page, button: str, source: str) -> None:
    """The copy button puts the value of ``source`` on the clipboard."""
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("button", name=button)).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text(source).strip()


def test_the_other_pages(browser, site, mailbox):
    base, email, engine = site
    page = browser.new_page(viewport={"width": 1280, "height": 900},
                            permissions=["clipboard-read", "clipboard-write"])
    app_id = sign_up_and_create_app(page, base, email, mailbox)
    add_activity(engine, app_id)

    page.get_by_label("Your password").first.fill(PASSWORD)
    page.get_by_role("button", name="Reveal secrets").click()
    expect(page.locator("#secret-custom-auth")).to_be_visible()
    copies(page, "Copy the custom-auth secret", "#secret-custom-auth")
    copies(page, "Copy the app id", "#app-id")
    page.locator("#custom_token-password").fill(PASSWORD)
    page.locator("#custom_token-grace").fill("48")
    page.locator("form.rotate").nth(1).get_by_role("button", name="Rotate").click()
    expect(page.locator("#new-secret")).to_be_visible()
    expect(page.locator("#custom_token-previous")).to_contain_text("valid until")
    shot(page, "secrets-rotated")
    copies(page, "Copy the new secret", "#new-secret")

    page.get_by_role("link", name="Overview").click()
    copies(page, "Copy the Callback URL", "#url-callback")
    assert page.inner_text("#url-callback") == f"{base}/v1/apps/{app_id}/callback"

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Search by external id").fill("pilot0")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#users tbody tr")).to_have_count(10)
    shot(page, "users")
    page.get_by_role("link", name="pilot03").click()
    expect(page.locator("#user-status")).to_have_text("disabled")
    shot(page, "user")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#events tbody tr").first).to_contain_text("login.failed")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"audit-{app_id}.csv"
    shot(page, "audit")

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("CI deploy")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Create key").click()
    assert page.inner_text("#new-key").startswith("bk_")
    copies(page, "Copy the new key", "#new-key")
    shot(page, "api-keys")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email").fill("teammate@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Create invitation link").click()
    link = page.inner_text("#invite-link")
    copies(page, "Copy the invitation link", "#invite-link")
    shot(page, "members")

    invitee = browser.new_page(viewport={"width": 1280, "height": 900})
    invitee.goto(link)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Join Acme Games")
    shot(invitee, "invite")
    invitee.get_by_label("Password").fill("teammate password 1")
    invitee.get_by_role("button", name="Join Acme Games").click()
    invitee.wait_for_url("**/dashboard/apps")
    expect(invitee.get_by_role("status")).to_contain_text("Welcome to Acme Games")
    # A viewer sees the settings, read-only, and no button that changes anything.
    invitee.get_by_role("link", name="Space Run").click()
    invitee.get_by_role("link", name="Settings").click()
    expect(invitee.get_by_label("Name", exact=True)).to_be_disabled()
    expect(invitee.get_by_role("button", name="Save settings")).to_have_count(0)
    expect(invitee.get_by_role("button", name="Delete app")).to_have_count(0)
    shot(invitee, "settings-viewer")
    invitee.close()
    page.reload()
    expect(page.locator("#members tbody tr")).to_have_count(2)
    page.close()
