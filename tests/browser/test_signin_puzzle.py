"""The sign-in puzzle in a real browser: when an email's failures have run its
bucket dry, the sign-in page asks for a proof of work that ``static/pow.js``
solves with WebCrypto while the member types (saas/proof_of_work.py); the
right password then signs in, however many strangers failed before.

The server is at ``http://localhost:PORT``: WebCrypto needs a secure context,
and localhost is one without TLS.
"""

from __future__ import annotations

import os
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from saas.config import configure
from saas.passwords import Passwords
from saas.tenants.services import sign_up
from tests.live import _serving, forget_tenants_of, free_port

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(app_settings):
    email = f"puzzle-{uuid.uuid4().hex[:10]}@example.com"
    port = free_port()
    base = f"http://localhost:{port}"
    # A cheap puzzle: the test is about the page solving it, not about its cost.
    app = configure(dict(app_settings, **{"saas.public_base_url": base,
                                          "saas.signin.challenge_bits": "10"})).make_wsgi_app()
    engine = create_engine(app_settings["sqlalchemy.url"])
    with Session(engine) as db:
        sign_up(db, Passwords(), tenant_name="Puzzle Co", email=email, password=PASSWORD)
        db.commit()
    try:
        with _serving(app, port):
            yield base, email, app.registry
    finally:
        app.registry["saas.db_engine"].dispose()
        forget_tenants_of(engine, email)
        engine.dispose()


def test_the_page_solves_the_puzzle_and_the_right_password_gets_in(browser, server):
    base, email, registry = server
    # Strangers' failures from elsewhere have emptied the email's bucket.
    limiter, limit = registry["saas.rate_limiter"], registry["saas.rate_limits"]["signin_email"]
    while limiter.available(None, limit, email) >= 1:
        limiter.check(None, [(limit, email)])
    page = browser.new_page()
    page.goto(base + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Not refused: asked for the puzzle, which the page solves by itself.
    expect(page.locator("#pow-status")).to_have_text(
        "Puzzle solved: enter your password and sign in.")
    nonce = page.locator("input[name=pow_nonce]").input_value()
    assert nonce.isdigit()
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "signin-puzzle-solved.png"), full_page=True)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/apps")
