"""Sign-up and invitations refuse over-long (never silently cut) and common passwords."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from saas.passwords import MAX_PASSWORD_LENGTH
from saas.tenants.models import Member
from tests.functional.dashboard_helpers import build_world


def _sign_up(webapp, password: str):
    form = webapp.get("/dashboard/signup").forms[0]
    form["tenant_name"] = "Acme"
    form["email"] = "founder@example.com"
    form["password"] = password
    return form.submit(status="*")


def _members(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Member))


@pytest.mark.parametrize(("password", "message"), [
    ("a long phrase " + "z" * MAX_PASSWORD_LENGTH, f"at most {MAX_PASSWORD_LENGTH:,}"),
    ("qwertyuiop", "common"),
    ("Password123", "common"),
])
def test_sign_up_refuses_the_password_with_its_reason(webapp, db, password, message):
    response = _sign_up(webapp, password)
    assert response.status_int == 400
    assert message in response.html.find(id="password-error").text
    assert _members(db) == 0


def test_an_invitation_refuses_a_common_password(webapp, db, passwords, secret_box):
    world = build_world(db, passwords, secret_box)
    webapp.reset()
    form = webapp.get(f"/dashboard/invite/{world.invite_token}").forms[0]
    form["password"] = "1234567890"
    response = form.submit(status=400)
    assert "common" in response.text
    before = _members(db)
    form["password"] = "p" * (MAX_PASSWORD_LENGTH + 1)
    assert f"at most {MAX_PASSWORD_LENGTH:,}" in form.submit(status=400).text
    assert _members(db) == before
