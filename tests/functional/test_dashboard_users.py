"""End users on the dashboard: search, pages, the user's page and its actions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from saas.audit.models import AuditEvent
from saas.users.disabled import disabled_key
from saas.users.models import EndUser
from tests.functional.dashboard_helpers import build_world, csrf_token, make_end_user, sign_in


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _users(world, rest=""):
    return f"/dashboard/apps/{world.app.app_id}/users{rest}"


def _user(world, rest="", user=None):
    return _users(world, f"/{(user or world.user).id}{rest}")


def _external_ids(page) -> list[str]:
    return [row.find("th").text.strip() for row in page.html.select("#users tbody tr")]


def test_the_list_searches_by_external_id_prefix(webapp, db, world):
    for name in ("alicia", "albert", "zed"):
        make_end_user(db, world.app, name)
    db.commit()
    assert _external_ids(webapp.get(_users(world))) == ["albert", "alice", "alicia", "bob",
                                                        "zed"]
    page = webapp.get(_users(world), {"q": "ali"})
    assert _external_ids(page) == ["alice", "alicia"]
    assert page.html.find(id="q")["value"] == "ali"
    empty = webapp.get(_users(world), {"q": "nobody"})
    assert "No user’s external id starts with “nobody”" in empty.text
    # LIKE wildcards are searched for literally.
    assert _external_ids(webapp.get(_users(world), {"q": "%"})) == []


def test_next_page_follows_the_cursor(webapp, db, world):
    for n in range(55):
        make_end_user(db, world.app, f"user{n:03d}")
    db.commit()
    first = webapp.get(_users(world), {"q": "user"})
    assert len(_external_ids(first)) == 50
    second = first.click(linkid="next-page")
    assert _external_ids(second) == [f"user{n:03d}" for n in range(50, 55)]
    assert second.html.find(id="next-page") is None
    assert "q=user" in second.request.url
    assert "First page" in second.text


def test_a_made_up_cursor_is_refused(webapp, world):
    page = webapp.get(_users(world), {"cursor": "not-a-cursor"}, status=400)
    assert "not valid any more" in page.text


def test_the_user_page_shows_data_and_times(webapp, world):
    page = webapp.get(_user(world))
    assert page.html.find(id="user-status").text == "active"
    assert '"plan": "gold"' in page.html.find(id="user-custom").text
    profile = page.html.find(id="user-profile").text
    assert '"langs": [\n    "en",\n    "fr"\n  ]' in profile  # pretty, indented JSON
    assert page.html.find("time") is not None
    audit_link = page.html.find("a", string="Events of this user")["href"]
    assert f"user_id={world.user.id}" in audit_link


@pytest.mark.parametrize("user_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_unknown_users_are_not_found(webapp, world, user_id):
    webapp.get(_users(world, f"/{user_id}"), status=404)


def test_disable_and_enable(webapp, db, world, registry):
    redis, keys = registry["saas.redis"], registry["saas.redis_keys"]
    sessions = registry["saas.sessions_store"]
    sessions.create(world.app.app_id, "sid-1", str(world.user.id), "alice", 3600)
    flag = disabled_key(keys, world.app.app_id, str(world.user.id))

    page = webapp.post(_user(world, "/disable"), {"csrf_token": csrf_token(webapp)},
                       status=303).follow()
    assert "alice is disabled and signed out." in page.html.find(class_="flash").text
    assert page.html.find(id="user-status").text == "disabled"
    db.expire_all()
    assert db.get(EndUser, world.user.id).disabled is True
    assert redis.exists(flag) and sessions.get(world.app.app_id, "sid-1") is None

    again = webapp.post(_user(world, "/disable"), {"csrf_token": csrf_token(webapp)},
                        status=303).follow()
    assert "disabled already" in again.text

    page = webapp.post(_user(world, "/enable"), {"csrf_token": csrf_token(webapp)},
                       status=303).follow()
    assert "alice can log in again." in page.text
    db.expire_all()
    assert db.get(EndUser, world.user.id).disabled is False and not redis.exists(flag)
    types = db.scalars(select(AuditEvent.type).where(AuditEvent.user_id == world.user.id)).all()
    assert sorted(types) == ["user.disabled", "user.enabled"]


def test_revoke_sessions(webapp, db, world, registry):
    sessions = registry["saas.sessions_store"]
    for sid in ("sid-a", "sid-b"):
        sessions.create(world.app.app_id, sid, str(world.user.id), "alice", 3600)
    page = webapp.post(_user(world, "/revoke-sessions"), {"csrf_token": csrf_token(webapp)},
                       status=303).follow()
    assert "Revoked 2 sessions of alice." in page.text
    assert sessions.get(world.app.app_id, "sid-a") is None
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "session.revoked"))
    assert event.details["sessions"] == 2 and event.external_id == "alice"


def test_delete_needs_confirmation(webapp, db, world):
    page = webapp.post(_user(world, "/delete"), {"csrf_token": csrf_token(webapp)},
                       status=400)
    assert "Tick the box" in page.html.find(id="delete-error").text
    assert page.html.find("details", class_="confirm").has_attr("open")
    db.expire_all()
    assert db.get(EndUser, world.user.id) is not None


def test_delete(webapp, db, world):
    user_id = world.user.id
    response = webapp.post(_user(world, "/delete"),
                           {"csrf_token": csrf_token(webapp), "confirm": "yes"}, status=303)
    assert response.location.endswith(_users(world))
    page = response.follow()
    assert "alice deleted" in page.html.find(class_="flash").text
    assert _external_ids(page) == ["bob"]
    db.expire_all()
    assert db.get(EndUser, user_id) is None
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "user.deleted"))
    assert event.user_id == user_id and event.external_id == "alice"
