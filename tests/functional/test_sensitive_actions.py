"""Actions that hand out or widen power ask for the member's password again, all
through one helper (``saas.dashboard.common.confirm_sensitive_action``): an API
key can read every secret, so creating one must cost what revealing does."""

from __future__ import annotations

import pytest

from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import (
    ACTIONS,
    build_world,
    csrf_token,
    post,
    sign_in,
    snapshot,
)

SENSITIVE = ("secrets.reveal", "secret.rotate", "client_secret.rotate", "key.create",
             "member.invite", "member.role", "member.remove")


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _action(name: str):
    return next(action for action in ACTIONS if action.name == name)


@pytest.mark.parametrize("name", SENSITIVE)
@pytest.mark.parametrize("password", [None, "", "not my password"])
def test_each_sensitive_action_needs_the_password(webapp, db, world, name, password):
    action = _action(name)
    data = {k: v for k, v in action.data(world).items() if k != "password"}
    if password is not None:
        data["password"] = password
    before = snapshot(db)
    response = post(webapp, action.path(world), data, token=csrf_token(webapp), status=401)
    assert "That password is not right." in response.text
    db.expire_all()
    after = snapshot(db)
    # Nothing changed but the failure's own audit row, if any.
    assert {t: rows for t, rows in after.items() if t != "audit_events"} == \
        {t: rows for t, rows in before.items() if t != "audit_events"}


@pytest.mark.parametrize("name", SENSITIVE)
def test_each_sensitive_action_works_with_the_password(webapp, world, name):
    action = _action(name)
    data = {**action.data(world), "password": DEFAULT_PASSWORD}
    post(webapp, action.path(world), data, token=csrf_token(webapp), status=action.ok)


def _reveal(webapp, world, password: str, status):
    return webapp.post(f"/dashboard/apps/{world.app.app_id}/secrets/reveal",
                       {"csrf_token": csrf_token(webapp), "password": password}, status=status)


def test_password_guesses_on_the_gate_wait_longer_each_time(webapp, db, passwords, world):
    """Finding: re-entering the password had no guess limit, so a stolen session
    could guess it at full speed."""
    _reveal(webapp, world, "guess one", 401)
    refused = _reveal(webapp, world, "guess two", 429)
    assert refused.headers["Retry-After"] == "1"
    assert "Too many attempts. Try again in 1 second." in refused.text
    # The right password waits too (no oracle), and so does every other gated form.
    _reveal(webapp, world, DEFAULT_PASSWORD, 429)
    post(webapp, "/dashboard/api-keys", {"name": "x", "password": DEFAULT_PASSWORD},
         token=csrf_token(webapp), status=429)
    # Another member's gate is their own.
    sign_in(webapp, world.admin.email)
    _reveal(webapp, world, DEFAULT_PASSWORD, 200)
