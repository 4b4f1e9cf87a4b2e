"""Management API: the OpenID Connect settings of an app and its client secret
(shown once, stored as a hash, rotated with grace, deleted when the app turns public)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select, text

from saas.apps.models import App, ClientSecret
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from tests.functional.test_manage_apps import cached, events_of
from tests.functional.test_manage_support import Api, make_tenant

OIDC_DEFAULTS = {"client_type": "public", "pkce_required": True,
                 "post_logout_redirect_uris": [], "oidc_custom_claim": False}
LOGOUT_URI = "https://app.example.com/signed-out"


def client_secret_row(db, app_id: str) -> ClientSecret | None:
    db.expire_all()
    return db.scalar(select(ClientSecret).join(App).where(App.app_id == app_id))


def row_text(db, app_id: str) -> str:
    """Every column of the app's client_secrets row, as the database holds it."""
    row = db.execute(text("SELECT c.* FROM client_secrets c JOIN apps a ON a.id = c.app_id "
                          "WHERE a.app_id = :app_id"), {"app_id": app_id}).one()
    return " ".join(str(value) for value in row)


def test_a_new_app_is_a_public_client_by_default_without_a_client_secret(api, db, registry):
    body = api.post("apps", {"name": "Plain"}, status=201).json
    assert {k: body[k] for k in OIDC_DEFAULTS} == OIDC_DEFAULTS
    assert set(body["secrets"]) == {"custom_auth", "custom_token"}
    assert client_secret_row(db, body["app_id"]) is None
    assert cached(registry, body["app_id"]).client_secret is None
    listed = api.get(f"apps/{body['app_id']}/secrets").json
    assert set(listed) == {"custom_auth", "custom_token"}


def test_creating_a_confidential_app_shows_its_client_secret_once_and_stores_a_hash(
        api, db, registry):
    response = api.post("apps", {"name": "Server app", "client_type": "confidential",
                                 "pkce_required": False, "oidc_custom_claim": True,
                                 "post_logout_redirect_uris": [LOGOUT_URI, LOGOUT_URI]},
                        status=201)
    body = response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert body["client_type"] == "confidential" and body["pkce_required"] is False
    assert body["oidc_custom_claim"] is True
    assert body["post_logout_redirect_uris"] == [LOGOUT_URI]  # duplicates dropped
    secret = body["secrets"]["client_secret"]
    assert secret.startswith("cs_") and len(secret) >= 3 + 43
    assert set(body["secrets"]) == {"custom_auth", "custom_token", "client_secret"}

    app_id = body["app_id"]
    row = client_secret_row(db, app_id)
    assert row.current_hash == hash_token(secret) and row.previous_hash is None
    stored = row_text(db, app_id)
    assert secret not in stored and secret[3:] not in stored
    config = cached(registry, app_id)
    assert config.confidential and config.pkce_required is False
    assert config.post_logout_redirect_uris == [LOGOUT_URI] and config.oidc_custom_claim
    assert config.client_secret_matches(secret, time.time())
    assert not config.client_secret_matches("cs_" + "x" * 43, time.time())

    # Never read back: the app object has no secrets, the list shows no value.
    assert "secrets" not in api.get(f"apps/{app_id}").json
    listed = api.get(f"apps/{app_id}/secrets").json
    assert listed["client_secret"] == {"current": None, "previous_valid_until": None}
    assert secret not in str(listed)


def test_patch_to_confidential_answers_the_new_secret_once_and_public_deletes_it(
        api, tenant, db, registry):
    app_id = tenant.app.app_id
    changed = api.patch(tenant.app_path, {"client_type": "confidential"})
    assert changed.headers["Cache-Control"] == "no-store"
    secret = changed.json["secrets"]["client_secret"]
    assert set(changed.json["secrets"]) == {"client_secret"}
    assert changed.json["client_type"] == "confidential"
    assert cached(registry, app_id).client_secret_matches(secret, time.time())
    assert secret not in row_text(db, app_id)
    (event,) = events_of(db, app_id, "app.updated")
    assert event.details["fields"] == ["client_type"] and secret not in str(event.details)

    # Already confidential: nothing new, no secret in the answer.
    again = api.patch(tenant.app_path, {"client_type": "confidential", "pkce_required": False})
    assert "secrets" not in again.json and again.json["pkce_required"] is False
    assert client_secret_row(db, app_id).current_hash == hash_token(secret)

    public = api.patch(tenant.app_path, {"client_type": "public"}).json
    assert public["client_type"] == "public" and "secrets" not in public
    assert client_secret_row(db, app_id) is None
    config = cached(registry, app_id)
    assert config.client_secret is None and not config.client_secret_matches(secret,
                                                                               time.time())
    assert "client_secret" not in api.get(tenant.app_path + "/secrets").json
    # A public client has no client secret to rotate or revoke.
    for action in ("rotate", "revoke-previous"):
        error = api.post(f"{tenant.app_path}/secrets/client_secret/{action}", status=404).json
        assert error["reason"] == "not_found" and "public client" in error["error_description"]

    # Confidential again: a brand-new secret, the old one stays dead.
    renewed = api.patch(tenant.app_path, {"client_type": "confidential"}).json
    fresh = renewed["secrets"]["client_secret"]
    assert fresh != secret
    config = cached(registry, app_id)
    assert config.client_secret_matches(fresh, time.time())
    assert not config.client_secret_matches(secret, time.time())


def test_rotation_keeps_the_old_client_secret_during_grace_until_revoked(
        api, db, registry):
    created = api.post("apps", {"name": "Rotating", "client_type": "confidential"},
                       status=201).json
    app_id, old = created["app_id"], created["secrets"]["client_secret"]
    path = f"apps/{app_id}/secrets/client_secret"

    rotated = api.post(path + "/rotate", {"grace_seconds": 3600})
    assert rotated.headers["Cache-Control"] == "no-store"
    new = rotated.json["current"]
    assert new.startswith("cs_") and new != old
    until = dt.datetime.fromisoformat(rotated.json["previous_valid_until"])
    assert abs(until.timestamp() - (time.time() + 3600)) < 60
    config = cached(registry, app_id)
    assert config.client_secret_matches(new, time.time())
    assert config.client_secret_matches(old, time.time())
    # The grace is the limit: past it, the old secret no longer matches.
    assert not config.client_secret_matches(old, until.timestamp() + 1)
    row = client_secret_row(db, app_id)
    assert (row.current_hash, row.previous_hash) == (hash_token(new), hash_token(old))
    assert new not in row_text(db, app_id) and old not in row_text(db, app_id)
    listed = api.get(f"apps/{app_id}/secrets").json["client_secret"]
    assert listed == {"current": None, "previous_valid_until": rotated.json[
        "previous_valid_until"]}

    api.post(path + "/revoke-previous", status=204)
    config = cached(registry, app_id)
    assert config.client_secret_matches(new, time.time())
    assert not config.client_secret_matches(old, time.time())
    assert api.get(f"apps/{app_id}/secrets").json["client_secret"][
        "previous_valid_until"] is None
    api.post(path + "/revoke-previous", status=204)  # nothing left to revoke: no event

    (rotation,) = events_of(db, app_id, "secret.rotated")
    assert rotation.details == {"kind": "client_secret", "grace_seconds": 3600, "via": "api",
                                "api_key_prefix": rotation.details["api_key_prefix"]}
    (revocation,) = events_of(db, app_id, "secret.revoked")
    assert revocation.details["kind"] == "client_secret"
    for event in (rotation, revocation):
        assert new not in str(event.details) and old not in str(event.details)


def test_rotation_without_grace_drops_the_old_client_secret_at_once(api, registry):
    created = api.post("apps", {"name": "Now", "client_type": "confidential"}, status=201).json
    old = created["secrets"]["client_secret"]
    rotated = api.post(f"apps/{created['app_id']}/secrets/client_secret/rotate",
                       {"grace_seconds": 0}).json
    assert rotated["previous_valid_until"] is None
    config = cached(registry, created["app_id"])
    assert config.client_secret_matches(rotated["current"], time.time())
    assert not config.client_secret_matches(old, time.time())


@pytest.mark.parametrize(("body", "words"), [
    ({"client_type": "secret"}, "public or confidential"),
    ({"client_type": None}, "public or confidential"),
    ({"client_type": ["confidential"]}, "public or confidential"),
    ({"pkce_required": "false"}, "true or false"),
    ({"pkce_required": 0}, "true or false"),
    ({"oidc_custom_claim": None}, "true or false"),
    ({"post_logout_redirect_uris": LOGOUT_URI}, "list"),
    ({"post_logout_redirect_uris": [1]}, "list"),
    ({"post_logout_redirect_uris": ["javascript:alert(1)"]},
     "post-logout redirect URI scheme 'javascript' is not allowed"),
    ({"post_logout_redirect_uris": ["http://evil.example.com/bye"]},
     "The post-logout redirect URI 'http://evil.example.com/bye' must use https"),
    ({"post_logout_redirect_uris": ["https://a.example.com/#x"]}, "fragment"),
    ({"post_logout_redirect_uris": [f"https://a.example.com/{i}" for i in range(51)]},
     "At most 50 post-logout redirect URIs"),
])
def test_bad_oidc_settings_are_refused_with_422_and_change_nothing(api, tenant, db, body,
                                                                   words):
    before = api.get(tenant.app_path).json
    for call in (lambda: api.post("apps", {"name": "x", **body}, status=422),
                 lambda: api.patch(tenant.app_path, body, status=422)):
        error = call().json
        assert error["error"] == "invalid_request" and error["reason"] == "invalid_value"
        assert words in error["error_description"], error["error_description"]
    assert api.get(tenant.app_path).json == before
    assert [a["app_id"] for a in api.get("apps").json["apps"]] == [tenant.app.app_id]
    assert client_secret_row(db, tenant.app.app_id) is None


def test_rotation_of_the_client_secret_refuses_a_bad_grace(api, db):
    created = api.post("apps", {"name": "Graceful", "client_type": "confidential"},
                       status=201).json
    path = f"apps/{created['app_id']}/secrets/client_secret/rotate"
    for body, reason in (({"grace_seconds": -1}, "invalid_value"),
                         ({"grace_seconds": "60"}, "invalid_value"),
                         ({"grace": 1}, "unknown_fields")):
        assert api.post(path, body, status=422).json["reason"] == reason
    row = client_secret_row(db, created["app_id"])
    assert row.current_hash == hash_token(created["secrets"]["client_secret"])
    assert row.rotated_at is None


def test_another_tenants_client_secret_is_not_found_and_unchanged(api, tenant, webapp, db,
                                                                  passwords, secret_box):
    other = make_tenant(db, passwords, secret_box, "Rival")
    other_api = Api(webapp, other.key)
    secret = other_api.patch(other.app_path, {"client_type": "confidential"}).json[
        "secrets"]["client_secret"]
    foreign = f"apps/{other.app.app_id}"
    for action in ("rotate", "revoke-previous"):
        error = api.post(f"{foreign}/secrets/client_secret/{action}", status=404).json
        assert error["reason"] == "not_found"
    api.patch(foreign, {"client_type": "public"}, status=404)
    api.get(foreign + "/secrets", status=404)
    row = client_secret_row(db, other.app.app_id)
    assert row is not None and row.current_hash == hash_token(secret)
    assert row.previous_hash is None
    assert db.scalar(select(AuditEvent).where(AuditEvent.tenant_id == tenant.tenant_id,
                                              AuditEvent.type.like("secret.%"))) is None
