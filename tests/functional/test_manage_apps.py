"""Management API: apps and their secrets, seen through the login path too."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import pytest
import transaction
from sqlalchemy import select

from saas.apps.cache import publish_app
from saas.apps.models import App, SecretKind
from saas.apps.services import app_as_dict
from saas.audit.models import AuditEvent
from tests.flows import CLIENT_REDIRECT, Login, authorize, query_of
from tests.functional.test_manage_support import ENDPOINT

APP_FIELDS = {"app_id", "name", "custom_auth_endpoint", "redirect_uris", "backchannel",
              "custom_token_enabled", "require_bound_tokens", "access_token_ttl",
              "refresh_token_ttl", "hosted_form", "restart_url", "client_type",
              "pkce_required", "post_logout_redirect_uris", "oidc_custom_claim", "created_at",
              "updated_at"}
NEW_APP = {
    "name": "Space Run",
    "custom_auth_endpoint": ENDPOINT,
    "redirect_uris": [CLIENT_REDIRECT, "spacerun://auth"],
    "custom_token_enabled": True,
    "hosted_form": {"title": "Space Run", "fields": [{"name": "email", "type": "email"}]},
}




def cached(registry, app_id: str):
    """The login path's view of the app, failing if it is not in the cache."""
    return registry["saas.app_cache"].load(lambda: pytest.fail("cache miss"), app_id)


def logs_in(webapp, app_id: str, secret: str, user_id: str = "player-1") -> dict[str, str]:
    """One redirect login signed with ``secret``: the client's redirect parameters."""
    return query_of(Login(webapp, app_id, secret).finish(user_id=user_id).location)


def events_of(db, app_id: str, type_: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.app_id == app_id,
                                                    AuditEvent.type == type_)))


def test_create_returns_the_app_with_its_secrets_and_the_login_path_sees_it(
        api, tenant, webapp, registry, db):
    response = api.post("apps", NEW_APP, status=201)
    body = response.json
    app_id = body["app_id"]
    assert set(body) == APP_FIELDS | {"secrets"}
    assert response.headers["Location"] == f"http://bk.test/v1/manage/apps/{app_id}"
    assert response.headers["Cache-Control"] == "no-store"
    assert body["redirect_uris"] == [CLIENT_REDIRECT, "spacerun://auth"]
    assert body["hosted_form"]["fields"] == [{"name": "email", "label": "email",
                                              "type": "email"}]
    assert body["access_token_ttl"] == 900 and body["custom_token_enabled"] is True
    assert set(body["secrets"]) == {"custom_auth", "custom_token"}

    config = cached(registry, app_id)
    assert config.name == "Space Run" and config.custom_token_enabled
    assert config.redirect_uris == [CLIENT_REDIRECT, "spacerun://auth"]
    assert "code" in logs_in(webapp, app_id, body["secrets"]["custom_auth"])

    (event,) = events_of(db, app_id, "app.created")
    assert event.tenant_id == tenant.tenant_id
    assert event.details == {"name": "Space Run", "via": "api",
                             "api_key_prefix": tenant.key_prefix}
    assert app_id in {app["app_id"] for app in api.get("apps").json["apps"]}


@pytest.mark.parametrize(("body", "reason", "words"), [
    ({"name": "x", "colour": "red", "owner": 1}, "unknown_fields", "colour, owner"),
    ({"custom_auth_endpoint": ENDPOINT}, "invalid_value", "name is required"),
    ({"name": "   "}, "invalid_value", "1 to 200"),
    ({"name": "x", "custom_auth_endpoint": "ftp://tenant.example.com/"}, "invalid_value", ""),
    ({"name": "x", "redirect_uris": "https://a.example.com/cb"}, "invalid_value", "list"),
    ({"name": "x", "redirect_uris": ["javascript:alert(1)"]}, "invalid_value", "not allowed"),
    ({"name": "x", "access_token_ttl": 10}, "invalid_value", "60 to 3600"),
    ({"name": "x", "backchannel": "yes"}, "invalid_value", "true or false"),
    ({"name": "x", "hosted_form": {"fields": [{"name": "state"}]}}, "invalid_value", "state"),
])
def test_create_refuses_unknown_fields_and_bad_values_with_422(api, tenant, body, reason,
                                                                words):
    before = len(api.get("apps").json["apps"])
    error = api.post("apps", body, status=422).json
    assert error["error"] == "invalid_request" and error["reason"] == reason
    assert words in error["error_description"]
    assert len(api.get("apps").json["apps"]) == before


def test_a_body_that_is_not_a_json_object_is_400(api, webapp, tenant):
    for body, content_type in ((b"[1, 2]", "application/json"), (b"{oops", "application/json"),
                               (b"name=x", "application/x-www-form-urlencoded")):
        error = webapp.post("/v1/manage/apps", body, status=400, headers={
            **api.headers, "Content-Type": content_type}).json
        assert error["error"] == "invalid_request" and error["reason"] == "invalid_body"


def test_list_and_read_show_only_the_tenants_apps(api, tenant):
    listed = api.get("apps").json["apps"]
    assert [app["app_id"] for app in listed] == [tenant.app.app_id]
    assert set(listed[0]) == APP_FIELDS
    read = api.get(tenant.app_path).json
    assert read == listed[0] and read["custom_auth_endpoint"] == ENDPOINT


def _utc(text: str) -> dt.datetime:
    """An ISO 8601 time that must carry a UTC offset."""
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text
    return value


def test_times_carry_their_utc_offset(api, tenant):
    listed = api.get("apps").json["apps"][0]
    assert _utc(listed["created_at"]) <= _utc(listed["updated_at"])
    rotated = api.post(tenant.app_path + "/secrets/custom_token/rotate").json
    assert _utc(rotated["previous_valid_until"]) > dt.datetime.now(dt.UTC)
    # Another zone is shown in UTC (stored times read back in UTC: tests/unit/test_db_times.py).
    utc = dt.datetime(2026, 3, 10, 9, 30, 5, 123456, tzinfo=dt.UTC)
    india = dt.datetime(2026, 3, 10, 15, 0, 5, 123456,
                        tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    shown = app_as_dict(App(app_id="abcd1234", name="x", created_at=utc, updated_at=india))
    assert shown["created_at"] == shown["updated_at"] == "2026-03-10T09:30:05.123000+00:00"


def test_patch_changes_settings_the_login_path_uses_at_once(api, tenant, webapp, registry, db):
    app_id = tenant.app.app_id
    new_uri = "https://new.example.com/cb"
    authorize(webapp, app_id, redirect_uri=new_uri, status=400)  # fills the cache
    changed = api.patch(tenant.app_path, {"redirect_uris": [CLIENT_REDIRECT, new_uri],
                                          "access_token_ttl": 600, "name": tenant.app.name}).json
    assert changed["redirect_uris"] == [CLIENT_REDIRECT, new_uri]
    assert changed["access_token_ttl"] == 600 and changed["updated_at"] > changed["created_at"]
    assert cached(registry, app_id).access_token_ttl == 600
    started = authorize(webapp, app_id, redirect_uri=new_uri)
    assert started.location.startswith(ENDPOINT + "?")

    (event,) = events_of(db, app_id, "app.updated")
    assert event.details["fields"] == ["access_token_ttl", "redirect_uris"]
    # Nothing changed, nothing recorded.
    api.patch(tenant.app_path, {"access_token_ttl": 600})
    assert len(events_of(db, app_id, "app.updated")) == 1


def test_patch_refuses_unknown_fields_and_bad_values_and_changes_nothing(api, tenant):
    before = api.get(tenant.app_path).json
    error = api.patch(tenant.app_path, {"access_token_ttl": 600, "secret": "x"},
                      status=422).json
    assert error["reason"] == "unknown_fields" and "secret" in error["error_description"]
    error = api.patch(tenant.app_path, {"access_token_ttl": 600, "refresh_token_ttl": 5},
                      status=422).json
    assert error["reason"] == "invalid_value" and "refresh_token_ttl" in error[
        "error_description"]
    assert api.get(tenant.app_path).json == before


def test_delete_removes_the_app_for_the_api_and_the_login_path(api, tenant, webapp, registry):
    app_id = tenant.app.app_id
    assert "code" in logs_in(webapp, app_id, tenant.secrets["custom_auth"])  # cached now
    api.delete(tenant.app_path, status=204)
    assert api.get(tenant.app_path, status=404).json["reason"] == "not_found"
    api.delete(tenant.app_path, status=404)
    assert registry["saas.redis"].get(registry["saas.redis_keys"].app(app_id, "config")) is None
    assert "app_not_found" in authorize(webapp, app_id, status=404).text
    assert api.get("apps").json["apps"] == []


def test_secrets_are_revealed_without_caching(api, tenant):
    response = api.get(tenant.app_path + "/secrets")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        kind: {"current": tenant.secrets[kind], "previous_valid_until": None}
        for kind in ("custom_auth", "custom_token")
    }


def test_rotation_keeps_the_old_secret_verifying_until_revoke_previous(api, tenant, webapp,
                                                                       registry, db):
    app_id, old = tenant.app.app_id, tenant.secrets["custom_auth"]
    assert "code" in logs_in(webapp, app_id, old)  # the cache holds the old settings
    rotated = api.post(tenant.app_path + "/secrets/custom_auth/rotate")
    assert rotated.headers["Cache-Control"] == "no-store"
    new = rotated.json["current"]
    until = dt.datetime.fromisoformat(rotated.json["previous_valid_until"])
    assert new != old and abs(until.timestamp() - (time.time() + 86400)) < 60

    assert "code" in logs_in(webapp, app_id, new, "player-2")
    assert "code" in logs_in(webapp, app_id, old, "player-3")
    revealed = api.get(tenant.app_path + "/secrets").json["custom_auth"]
    assert revealed == rotated.json

    api.post(tenant.app_path + "/secrets/custom_auth/revoke-previous", status=204)
    assert logs_in(webapp, app_id, old, "player-4")["reason"] == "token_bad_signature"
    assert "code" in logs_in(webapp, app_id, new, "player-5")
    assert api.get(tenant.app_path + "/secrets").json["custom_auth"]["previous_valid_until"] \
        is None
    (event,) = events_of(db, app_id, "secret.rotated")
    assert event.details["kind"] == "custom_auth" and event.details["grace_seconds"] == 86400
    assert new not in str(event.details) and old not in str(event.details)


def test_custom_token_rotation_with_a_chosen_grace(api, tenant, registry, secret_box):
    old = tenant.secrets["custom_token"]
    rotated = api.post(tenant.app_path + "/secrets/custom_token/rotate",
                       {"grace_seconds": 60}).json
    until = dt.datetime.fromisoformat(rotated["previous_valid_until"])
    assert abs(until.timestamp() - (time.time() + 60)) < 30
    config = cached(registry, tenant.app.app_id)
    assert config.secret_candidates(SecretKind.CUSTOM_TOKEN, secret_box, time.time()) == [
        rotated["current"], old]
    assert config.secret_candidates(SecretKind.CUSTOM_AUTH, secret_box, time.time()) == [
        tenant.secrets["custom_auth"]]

    at_once = api.post(tenant.app_path + "/secrets/custom_token/rotate",
                       {"grace_seconds": 0}).json
    assert at_once["previous_valid_until"] is None
    assert cached(registry, tenant.app.app_id).secret_candidates(
        SecretKind.CUSTOM_TOKEN, secret_box, time.time()) == [at_once["current"]]


@pytest.mark.parametrize(("body", "reason"), [
    ({"grace_seconds": -1}, "invalid_value"),
    ({"grace_seconds": 604801}, "invalid_value"),
    ({"grace_seconds": "60"}, "invalid_value"),
    ({"grace_seconds": True}, "invalid_value"),
    ({"grace_seconds": 1.5}, "invalid_value"),
    ({"grace": 60}, "unknown_fields"),
])
def test_rotation_refuses_a_bad_grace(api, tenant, body, reason):
    error = api.post(tenant.app_path + "/secrets/custom_auth/rotate", body, status=422).json
    assert error["reason"] == reason
    assert api.get(tenant.app_path + "/secrets").json["custom_auth"]["current"] == \
        tenant.secrets["custom_auth"]


def test_an_unknown_secret_kind_is_not_found(api, tenant):
    for action in ("rotate", "revoke-previous"):
        error = api.post(f"{tenant.app_path}/secrets/signing/{action}", status=404).json
        assert error["reason"] == "not_found"


def test_publishing_drops_the_cache_entry_unless_the_change_commits():
    calls: list[tuple[str, str]] = []
    cache = SimpleNamespace(store=lambda app: calls.append(("store", app.app_id)),
                            forget=lambda app_id: calls.append(("forget", app_id)))
    manager = transaction.TransactionManager(explicit=True)
    request = SimpleNamespace(db=SimpleNamespace(flush=lambda: None), app_cache=cache,
                              tm=manager)
    app = SimpleNamespace(app_id="abcd1234")
    for end, expected in ((manager.abort, "forget"), (manager.commit, "store")):
        calls.clear()
        manager.begin()
        publish_app(request, app)
        end()
        assert calls == [("store", "abcd1234"), (expected, "abcd1234")]
