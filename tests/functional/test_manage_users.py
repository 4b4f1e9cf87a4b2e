"""Management API: an app's end users — search, pages, disable, sessions, delete."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from saas.audit.models import AuditEvent
from saas.users.models import EndUser
from tests.flows import Login, query_of
from tests.functional.test_manage_support import add_user

USER_FIELDS = {"id", "external_id", "custom", "profile", "disabled", "created_at",
               "last_login_at"}




def login(webapp, tenant, external_id: str = "user-1") -> dict:
    return Login(webapp, tenant.app.app_id, tenant.secrets["custom_auth"]).tokens(
        user_id=external_id)


def refused_reason(webapp, tenant, external_id: str = "user-1") -> str | None:
    done = Login(webapp, tenant.app.app_id, tenant.secrets["custom_auth"]).finish(
        user_id=external_id)
    return query_of(done.location).get("reason")


def me(webapp, tenant, tokens: dict, status: int = 200):
    return webapp.get(f"/v1/apps/{tenant.app.app_id}/me", status=status,
                      headers={"Authorization": "Bearer " + tokens["access_token"]})


def audit_types(db, tenant) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent.type).where(
        AuditEvent.app_id == tenant.app.app_id, AuditEvent.type.not_like("login.%"),
        AuditEvent.type.not_like("token.%")).order_by(AuditEvent.at)))


def test_search_by_external_id_prefix_with_cursor_pages(api, tenant, db):
    for external_id in ("alice-2", "alice-1", "alice-3", "bob", "alice%"):
        add_user(db, tenant.app, external_id)
    db.commit()
    path = tenant.app_path + "/users"

    first = api.get(path, q="alice-", limit=2).json
    assert [u["external_id"] for u in first["users"]] == ["alice-1", "alice-2"]
    assert set(first["users"][0]) == USER_FIELDS and first["next_cursor"]
    second = api.get(path, q="alice-", limit=2, cursor=first["next_cursor"]).json
    assert [u["external_id"] for u in second["users"]] == ["alice-3"]
    assert second["next_cursor"] is None

    everyone = api.get(path).json
    assert [u["external_id"] for u in everyone["users"]] == [
        "alice%", "alice-1", "alice-2", "alice-3", "bob", "user-1"]
    # The prefix is literal text, not a LIKE pattern.
    assert [u["external_id"] for u in api.get(path, q="alice%").json["users"]] == ["alice%"]
    assert api.get(path, q="zed").json == {"users": [], "next_cursor": None}


@pytest.mark.parametrize(("params", "reason"), [
    ({"limit": "0"}, "invalid_parameter"),
    ({"limit": "201"}, "invalid_parameter"),
    ({"limit": "ten"}, "invalid_parameter"),
    ({"limit": "-5"}, "invalid_parameter"),
    ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ({"cursor": "WzEsIDJd"}, "invalid_cursor"),  # a list of two: another listing's cursor
    ({"q": "x" * 256}, "invalid_parameter"),
])
def test_bad_paging_parameters_are_400(api, tenant, params, reason):
    error = api.get(tenant.app_path + "/users", status=400, **params).json
    assert error["error"] == "invalid_request" and error["reason"] == reason


def test_read_a_user(api, tenant):
    user = api.get(tenant.user_path).json
    assert user["id"] == str(tenant.user.id) and user["external_id"] == "user-1"
    assert user["custom"] == {"plan": "pro"} and user["profile"] == {"name": "User-1"}
    assert user["disabled"] is False and user["last_login_at"] and user["created_at"]
    for unknown in ("00000000-0000-4000-8000-000000000000", "user-1", "42"):
        error = api.get(f"{tenant.app_path}/users/{unknown}", status=404).json
        assert error["reason"] == "not_found"


def test_disable_refuses_logins_and_ends_sessions_enable_lets_them_in(api, tenant, webapp,
                                                                      db):
    tokens = login(webapp, tenant)
    me(webapp, tenant, tokens)

    api.post(tenant.user_path + "/disable", status=204)
    assert me(webapp, tenant, tokens, status=401).json["error"] == "invalid_token"
    assert refused_reason(webapp, tenant) == "user_disabled"
    assert api.get(tenant.user_path).json["disabled"] is True
    assert refused_reason(webapp, tenant, "user-2") is None  # others are unaffected

    api.post(tenant.user_path + "/enable", status=204)
    assert api.get(tenant.user_path).json["disabled"] is False
    me(webapp, tenant, login(webapp, tenant))
    assert audit_types(db, tenant) == ["user.disabled", "user.enabled"]


def test_revoke_sessions_ends_every_session_of_the_user(api, tenant, webapp, db):
    sessions = [login(webapp, tenant), login(webapp, tenant)]
    other = login(webapp, tenant, "user-2")
    api.post(tenant.user_path + "/revoke-sessions", status=204)
    for tokens in sessions:
        me(webapp, tenant, tokens, status=401)
    me(webapp, tenant, other)
    refresh = webapp.post(f"/v1/apps/{tenant.app.app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": sessions[0]["refresh_token"]},
        status=400).json
    assert refresh["error"] == "invalid_grant"
    me(webapp, tenant, login(webapp, tenant))  # the user may log in again

    db.expire_all()
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "session.revoked",
                                               AuditEvent.app_id == tenant.app.app_id))
    assert event.details["sessions"] == 2 and event.user_id == tenant.user.id
    assert event.external_id == "user-1"


def test_delete_forgets_the_user_and_their_sessions(api, tenant, webapp, db):
    user_id = tenant.user.id
    tokens = login(webapp, tenant)
    api.delete(tenant.user_path, status=204)
    api.get(tenant.user_path, status=404)
    api.delete(tenant.user_path, status=404)
    me(webapp, tenant, tokens, status=401)
    db.expire_all()
    assert db.get(EndUser, user_id) is None
    assert audit_types(db, tenant) == ["user.deleted"]
