"""API keys belong to the member who created them: they act with that member's
current role and stop working when the member is removed (docs/security.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from saas.apikeys.models import ApiKey
from saas.audit.models import AuditEvent
from saas.tenants.members import change_role
from saas.tenants.models import Role
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import build_world, csrf_token, sign_in
from tests.functional.test_manage_support import Api


@pytest.fixture
def world(db, passwords, secret_box):
    return build_world(db, passwords, secret_box)


def _key_by(webapp, email: str, name: str = "admin's key") -> str:
    """A key created on the dashboard by the member with this email."""
    sign_in(webapp, email)
    page = webapp.post("/dashboard/api-keys", {"csrf_token": csrf_token(webapp), "name": name,
                                               "password": DEFAULT_PASSWORD}, status=200)
    webapp.reset()
    return page.html.find(id="new-key").text


def test_a_key_acts_with_its_creators_current_role(webapp, db, world):
    plaintext = _key_by(webapp, world.admin.email)
    key = db.scalar(select(ApiKey).where(ApiKey.name == "admin's key"))
    assert key.created_by_id == world.admin.id
    api = Api(webapp, plaintext)
    api.post("apps", {"name": "made by the admin's key"}, status=201)

    change_role(db, world.admin, Role.VIEWER)
    db.commit()
    assert api.get("apps").json["apps"]  # a viewer's key still reads …
    refused = api.post("apps", {"name": "no longer"}, status=403)  # … and changes nothing
    assert refused.json["error"] == "access_denied"
    api.call("DELETE", f"apps/{world.app.app_id}", status=403)

    change_role(db, world.admin, Role.ADMIN)
    db.commit()
    api.post("apps", {"name": "admin again"}, status=201)


def test_a_key_whose_creator_is_gone_is_an_invalid_key(webapp, db, world):
    plaintext = _key_by(webapp, world.admin.email)
    api = Api(webapp, plaintext)
    api.get("apps")
    # A member deleted behind the dashboard's back (ON DELETE SET NULL) leaves
    # an ownerless key: it must not work either.
    db.execute(text("UPDATE api_keys SET created_by_id = NULL WHERE name = :n"),
               {"n": "admin's key"})
    db.commit()
    refused = api.get("apps", status=401)
    assert refused.json["reason"] == "invalid_api_key"


def test_removing_a_member_revokes_their_keys_and_says_so(webapp, db, world):
    plaintext = _key_by(webapp, world.admin.email)
    api = Api(webapp, plaintext)
    api.get("apps")
    sign_in(webapp, world.owner.email)
    webapp.post(f"/dashboard/members/{world.admin.id}/remove",
                {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD}, status=303)
    assert api.get("apps", status=401).json["reason"] == "invalid_api_key"
    db.expire_all()
    key = db.scalar(select(ApiKey).where(ApiKey.name == "admin's key"))
    assert key.revoked_at is not None
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "member.removed"))
    assert event.details["api_keys_revoked"] == [key.prefix]
    # The owner's own key (the world's "CI deploy") is untouched.
    assert db.get(ApiKey, world.key.id).revoked_at is None


def test_the_keys_page_shows_each_keys_owner(webapp, db, world):
    _key_by(webapp, world.admin.email)
    sign_in(webapp, world.owner.email)
    rows = {row.find("th").text: row for row in
            webapp.get("/dashboard/api-keys").html.select("#keys tbody tr")}
    assert world.admin.email in rows["admin's key"].find(class_="owner").text
    assert world.owner.email in rows["CI deploy"].find(class_="owner").text
