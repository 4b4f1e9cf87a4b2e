"""The Webhooks tab in a real browser: add an endpoint (a refusal first), see its
secret once, open it, read the delivery log with a failed attempt, resend.
Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from tests.browser.test_dashboard_pages import shot, sign_up_and_create_app, site  # noqa: F401
from tests.functional.test_webhooks_support import add_delivery

pytestmark = pytest.mark.integration


def _fail_once(engine, app_id: str) -> None:
    """A delivery that gave up after one 502, as the worker would have recorded it."""
    with Session(engine) as session:
        app = session.scalar(select(App).where(App.app_id == app_id))
        endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.app_id == app.id))
        delivery = add_delivery(session, endpoint, "login.failed",
                                {"user_id": None, "external_id": "pilot7",
                                 "reason": "token_expired"},
                                status=DeliveryStatus.FAILED, next_attempt_at=None, attempts=1)
        session.add(WebhookAttempt(delivery_id=delivery.id, ok=False, status_code=502,
                                   latency_ms=87, error="HTTP 502",
                                   at=dt.datetime.now(dt.UTC),
                                   response_snippet="<html>Bad gateway</html>"))
        session.commit()


def test_add_a_webhook_read_its_log_and_resend(browser, site, mailbox):  # noqa: F811
    base, email, engine = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    app_id = sign_up_and_create_app(page, base, email, mailbox)

    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    page.get_by_label("Endpoint URL").fill("ftp://hooks.example.com/bk")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#form-error")).to_contain_text("must use http or https")
    expect(page.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")
    shot(page, "webhooks-error")

    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hook")  # refused at once
    page.get_by_label("user.updated").uncheck()
    page.get_by_role("button", name="Add webhook").click()
    secret = page.inner_text("#new-secret")
    assert secret.startswith("whsec_")
    expect(page.locator("#webhooks tbody tr")).to_have_count(1)
    shot(page, "webhooks")

    _fail_once(engine, app_id)
    page.get_by_role("link", name="Open the webhook").click()
    row = page.locator("#deliveries tbody tr")
    expect(row).to_contain_text("login.failed")
    expect(row).to_contain_text("HTTP 502")
    expect(row).to_contain_text("gave up")
    expect(page.get_by_label("user.updated")).not_to_be_checked()
    shot(page, "webhook")
    page.get_by_role("button", name="Resend").click()
    expect(page.locator(".flash")).to_contain_text("queued again with the same event id")
    expect(row).to_contain_text("pending")
    page.close()
