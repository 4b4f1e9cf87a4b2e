"""Secrets: reveal and rotate behind the password, the new secret shown once,
the previous one's grace shown and revocable; a confidential client's client
secret (a hash only) listed, rotated and revoked, never revealed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from saas.apps.models import App, ClientSecret, SecretKind
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from saas.db import utcnow
from saas.tenants.models import Role
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import add_member, build_world, csrf_token, sign_in


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _path(world, rest=""):
    return f"/dashboard/apps/{world.app.app_id}/secrets{rest}"


def _secret(db, world, kind: SecretKind):
    db.expire_all()
    return db.scalar(select(App).where(App.id == world.app.id)).secret(kind)


def _rotate(webapp, world, kind="custom_token", status=200, **data):
    body = {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD,
            "grace_hours": "24"}
    body.update(data)
    return webapp.post(_path(world, f"/{kind}/rotate"), body, status=status)


def test_the_page_shows_times_but_no_secret(webapp, world, secret_box):
    page = webapp.get(_path(world))
    current = secret_box.decrypt(world.app.secret(SecretKind.CUSTOM_AUTH).current_ciphertext)
    assert current not in page.text
    assert "valid until" in page.html.find(id="custom_auth-previous").text
    assert "none verifying" in page.html.find(id="custom_token-previous").text
    assert "Revoke previous now" in page.text  # only the custom-auth secret has one


def test_rotation_shows_the_new_secret_once(webapp, db, world, secret_box, registry):
    before = _secret(db, world, SecretKind.CUSTOM_TOKEN).current_ciphertext
    response = _rotate(webapp, world, grace_hours="48")
    assert response.headers["Cache-Control"] == "no-store"
    shown = response.html.find(id="new-secret").text
    secret = _secret(db, world, SecretKind.CUSTOM_TOKEN)
    assert secret_box.decrypt(secret.current_ciphertext) == shown
    assert secret.previous_ciphertext == before
    expected = utcnow() + dt.timedelta(hours=48)
    assert abs(secret.previous_valid_until - expected) < dt.timedelta(minutes=1)
    assert "valid until" in response.html.find(id="custom_token-previous").text
    # The login path sees both versions at once.
    cached = registry["saas.app_cache"].load(lambda: None, world.app.app_id)
    assert cached.secrets["custom_token"].previous == before
    # Shown once: the page itself never shows it again.
    assert shown not in webapp.get(_path(world)).text
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "secret.rotated"))
    assert event.details["kind"] == "custom_token"
    assert event.details["grace_seconds"] == 48 * 3600
    assert shown not in str(event.details)


def test_rotation_with_no_grace_keeps_no_previous(webapp, db, world):
    _rotate(webapp, world, grace_hours="0")
    assert _secret(db, world, SecretKind.CUSTOM_TOKEN).previous_ciphertext is None


def test_rotation_defaults_to_a_day_of_grace(webapp, db, world):
    _rotate(webapp, world, grace_hours="")
    secret = _secret(db, world, SecretKind.CUSTOM_TOKEN)
    expected = utcnow() + dt.timedelta(hours=24)
    assert abs(secret.previous_valid_until - expected) < dt.timedelta(minutes=1)


def test_rotation_needs_the_password(webapp, db, world):
    before = _secret(db, world, SecretKind.CUSTOM_TOKEN).current_ciphertext
    response = _rotate(webapp, world, status=401, password="not my password")
    assert "That password is not right." in response.html.find(id="custom_token-error").text
    assert response.html.find(id="new-secret") is None
    assert _secret(db, world, SecretKind.CUSTOM_TOKEN).current_ciphertext == before


@pytest.mark.parametrize("hours", ["-1", "169", "1.5", "many"])
def test_rotation_refuses_a_bad_grace_period(webapp, db, world, hours):
    before = _secret(db, world, SecretKind.CUSTOM_TOKEN).current_ciphertext
    response = _rotate(webapp, world, status=400, grace_hours=hours)
    assert "from 0 to 168" in response.html.find(id="custom_token-error").text
    assert _secret(db, world, SecretKind.CUSTOM_TOKEN).current_ciphertext == before


def test_unknown_secret_kinds_are_not_found(webapp, world):
    _rotate(webapp, world, kind="master", status=404)
    webapp.post(_path(world, "/master/revoke-previous"), {"csrf_token": csrf_token(webapp)},
                status=404)


def test_revoking_the_previous_secret(webapp, db, world, registry):
    response = webapp.post(_path(world, "/custom_auth/revoke-previous"),
                           {"csrf_token": csrf_token(webapp)}, status=303)
    page = response.follow()
    assert "no longer verifies" in page.html.find(class_="flash").text
    secret = _secret(db, world, SecretKind.CUSTOM_AUTH)
    assert secret.previous_ciphertext is None and secret.previous_valid_until is None
    cached = registry["saas.app_cache"].load(lambda: None, world.app.app_id)
    assert cached.secrets["custom_auth"].previous is None
    assert "Revoke previous now" not in page.text

    again = webapp.post(_path(world, "/custom_auth/revoke-previous"),
                        {"csrf_token": csrf_token(webapp)}, status=303).follow()
    assert "no previous custom-auth secret" in again.html.find(class_="flash").text
    events = db.scalars(select(AuditEvent).where(AuditEvent.type == "secret.revoked")).all()
    assert len(events) == 1 and events[0].details["kind"] == "custom_auth"


def test_reveal_shows_both_current_secrets(webapp, db, world, secret_box):
    page = webapp.get(_path(world))
    form = page.forms[1]
    form["password"] = DEFAULT_PASSWORD
    revealed = form.submit()
    assert revealed.headers["Cache-Control"] == "no-store"
    for kind, element in ((SecretKind.CUSTOM_AUTH, "secret-custom-auth"),
                          (SecretKind.CUSTOM_TOKEN, "secret-custom-token")):
        current = secret_box.decrypt(_secret(db, world, kind).current_ciphertext)
        assert revealed.html.find(id=element).text == current


def test_a_wrong_password_reveals_nothing(webapp, world):
    form = webapp.get(_path(world)).forms[1]
    form["password"] = "wrong password!"
    response = form.submit(status=401)
    assert "That password is not right." in response.html.find(id="reveal-error").text
    assert response.html.find(id="secret-custom-auth") is None


def _client_secret(db, world) -> ClientSecret | None:
    db.expire_all()
    return db.scalar(select(ClientSecret).where(ClientSecret.app_id == world.app.id))


def test_a_confidential_clients_secret_is_listed_without_a_value_and_cannot_be_revealed(
        webapp, world):
    page = webapp.get(_path(world))
    section = page.html.find(attrs={"aria-labelledby": "client_secret-heading"})
    assert section.find("h2").text == "Client secret"
    assert "cannot be revealed" in page.html.find(id="client_secret-hashed").text
    assert "none verifying" in page.html.find(id="client_secret-previous").text
    assert world.extra["client_secret"] not in page.text
    form = page.forms[1]
    form["password"] = DEFAULT_PASSWORD
    revealed = form.submit()
    assert world.extra["client_secret"] not in revealed.text
    assert "only its hash is stored" in revealed.html.find(
        attrs={"aria-labelledby": "reveal-heading"}).text


def test_rotating_the_client_secret_shows_it_once_and_keeps_the_old_one_in_grace(
        webapp, db, world, registry):
    old = world.extra["client_secret"]
    response = _rotate(webapp, world, kind="client_secret", grace_hours="2")
    assert response.headers["Cache-Control"] == "no-store"
    shown = response.html.find(id="new-secret").text
    assert shown.startswith("cs_") and shown != old
    assert "never be revealed again" in response.html.find(id="new-secret-heading").parent.text
    row = _client_secret(db, world)
    assert (row.current_hash, row.previous_hash) == (hash_token(shown), hash_token(old))
    assert abs(row.previous_valid_until - (utcnow() + dt.timedelta(hours=2))) < \
        dt.timedelta(minutes=1)
    config = registry["saas.app_cache"].load(lambda: None, world.app.app_id)
    assert config.client_secret_matches(shown, time.time())
    assert config.client_secret_matches(old, time.time())
    page = webapp.get(_path(world))
    assert shown not in page.text
    assert "valid until" in page.html.find(id="client_secret-previous").text
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "secret.rotated"))
    assert event.details["kind"] == "client_secret"
    assert event.details["grace_seconds"] == 2 * 3600
    assert shown not in str(event.details) and old not in str(event.details)

    revoked = webapp.post(_path(world, "/client_secret/revoke-previous"),
                          {"csrf_token": csrf_token(webapp)}, status=303).follow()
    assert "previous client secret no longer verifies" in revoked.html.find(
        class_="flash").text
    config = registry["saas.app_cache"].load(lambda: None, world.app.app_id)
    assert config.client_secret_matches(shown, time.time())
    assert not config.client_secret_matches(old, time.time())
    assert _client_secret(db, world).previous_hash is None
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "secret.revoked"))
    assert event.details["kind"] == "client_secret"


def test_rotating_the_client_secret_needs_the_password(webapp, db, world):
    response = _rotate(webapp, world, kind="client_secret", status=401, password="nope nope")
    assert "That password is not right." in response.html.find(id="client_secret-error").text
    assert _client_secret(db, world).current_hash == hash_token(world.extra["client_secret"])


def test_a_public_client_has_no_client_secret_row_and_no_client_secret_routes(
        webapp, db, world):
    world.app.client_type = "public"
    world.app.client_secret = None
    db.commit()
    page = webapp.get(_path(world))
    assert page.html.find(id="client_secret-heading") is None
    _rotate(webapp, world, kind="client_secret", status=404)
    webapp.post(_path(world, "/client_secret/revoke-previous"),
                {"csrf_token": csrf_token(webapp)}, status=404)
    assert db.scalar(select(AuditEvent).where(AuditEvent.type.like("secret.%"))) is None


def test_a_viewer_sees_the_client_secret_row_but_cannot_rotate_it(webapp, db, passwords,
                                                                  world):
    viewer = add_member(db, passwords, world.tenant_id, Role.VIEWER)
    db.commit()
    sign_in(webapp, viewer.email)
    page = webapp.get(_path(world))
    assert page.html.find(id="client_secret-heading") is not None
    assert page.html.find(id="client_secret-password") is None
    _rotate(webapp, world, kind="client_secret", status=403)
    assert _client_secret(db, world).current_hash == hash_token(world.extra["client_secret"])
