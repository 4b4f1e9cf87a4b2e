"""API keys on the dashboard: created and shown once, listed, revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from saas.apikeys.models import ApiKey
from saas.apikeys.services import find_active_key
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import build_world, csrf_token, sign_in


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _create(webapp, name, status=200):
    return webapp.post("/dashboard/api-keys", {"csrf_token": csrf_token(webapp), "name": name,
                                               "password": DEFAULT_PASSWORD}, status=status)


def test_the_list_shows_name_prefix_and_times(webapp, world):
    page = webapp.get("/dashboard/api-keys")
    row = page.html.select("#keys tbody tr")[0]
    assert row.find("th").text == "CI deploy"
    assert f"{world.key.prefix}…" in row.text and "never" in row.text and "active" in row.text


def test_a_new_key_is_shown_once_and_works(webapp, db, world):
    response = _create(webapp, "  Nightly sync  ")
    assert response.headers["Cache-Control"] == "no-store"
    plaintext = response.html.find(id="new-key").text
    assert plaintext.startswith("bk_") and "Copy it now" in response.text
    key = find_active_key(db, plaintext)
    assert key.name == "Nightly sync" and key.tenant_id == world.tenant_id
    assert key.key_hash == hash_token(plaintext)  # only the hash is stored
    assert plaintext not in webapp.get("/dashboard/api-keys").text
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "api_key.created"))
    assert event.details == {"by": world.owner.email, "name": "Nightly sync",
                             "prefix": key.prefix}


def test_a_key_needs_a_name(webapp, db, world):
    response = _create(webapp, "   ", status=400)
    assert "Name the key" in response.html.find(id="name-error").text
    keys = db.scalars(select(ApiKey).where(ApiKey.tenant_id == world.tenant_id)).all()
    assert [key.name for key in keys] == ["CI deploy"]

def test_revoke(webapp, db, world):
    page = webapp.post(f"/dashboard/api-keys/{world.key.id}/revoke",
                       {"csrf_token": csrf_token(webapp)}, status=303).follow()
    assert "revoked" in page.html.find(class_="flash").text
    db.expire_all()
    assert db.get(ApiKey, world.key.id).revoked_at is not None
    row = page.html.select("#keys tbody tr")[0]
    assert "revoked" in row.text and row.find("details") is None

    again = webapp.post(f"/dashboard/api-keys/{world.key.id}/revoke",
                        {"csrf_token": csrf_token(webapp)}, status=303).follow()
    assert "revoked already" in again.text
    assert len(db.scalars(select(AuditEvent).where(AuditEvent.type == "api_key.revoked"))
               .all()) == 1


def test_unknown_keys_are_not_found(webapp, world):
    for key_id in ("00000000-0000-0000-0000-000000000000", "nope"):
        webapp.post(f"/dashboard/api-keys/{key_id}/revoke", {"csrf_token": csrf_token(webapp)},
                    status=404)
