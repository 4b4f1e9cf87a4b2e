"""The app settings page: every field, inline validation, flashes, the cache, deletion."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from saas.apps.models import App, ClientSecret
from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from tests.functional.dashboard_helpers import build_world, csrf_token, settings_form, sign_in


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _path(world, rest="/settings"):
    return f"/dashboard/apps/{world.app.app_id}{rest}"


def _save(webapp, world, status, **changes):
    data = settings_form(world.app, **changes)
    data["csrf_token"] = csrf_token(webapp)
    return webapp.post(_path(world), data, status=status)


def _reload(db, world) -> App:
    db.expire_all()
    return db.scalar(select(App).where(App.id == world.app.id))


def test_the_form_shows_the_current_settings(webapp, world):
    page = webapp.get(_path(world))
    form = page.forms[1]
    assert form["name"].value == "Space Run"
    assert form["redirect_uris"].value == "https://app.example.com/callback"
    assert form["access_token_ttl"].value == "900"
    assert form["require_bound_tokens"].checked is False
    assert "Recommended" in page.html.find("label", attrs={"for": "require_bound_tokens"}).text
    assert len(page.html.select("table.rows tbody tr")) == 5
    assert page.html.select_one(".tabs [aria-current=page]").text == "Settings"


def test_saving_every_setting(webapp, db, world, registry):
    data = {
        "name": "Space Run 2",
        "custom_auth_endpoint": "http://127.0.0.1:9000/login",
        "redirect_uris": "https://game.example.com/cb\r\n\r\nspacerun://auth\r\n",
        "access_token_ttl": "600",
        "refresh_token_ttl": "86400",
        "backchannel": "on",
        "custom_token_enabled": "on",
        "require_bound_tokens": "on",
        "hosted_title": "Sign in to Space Run",
        "field_name_0": "id", "field_label_0": "Pilot name", "field_type_0": "text",
        "field_name_1": "pass", "field_label_1": "Passphrase", "field_type_1": "password",
        "field_name_2": "", "field_label_2": "", "field_type_2": "text",
        "restart_url": "https://game.example.com/start",
        # The world's app is a confidential client; no pkce_required box: off.
        "client_type": "public",
        "post_logout_redirect_uris": "https://game.example.com/bye\r\nspacerun://bye\r\n",
        "oidc_custom_claim": "on",
        "csrf_token": csrf_token(webapp),
    }
    response = webapp.post(_path(world), data, status=303)
    page = response.follow()
    assert "Settings saved." in page.html.find(class_="flash").text

    app = _reload(db, world)
    assert app.name == "Space Run 2"
    assert app.custom_auth_endpoint == "http://127.0.0.1:9000/login"
    assert app.redirect_uris == ["https://game.example.com/cb", "spacerun://auth"]
    assert (app.access_token_ttl, app.refresh_token_ttl) == (600, 86400)
    assert app.backchannel and app.custom_token_enabled and app.require_bound_tokens
    assert app.hosted_form == {"title": "Sign in to Space Run", "fields": [
        {"name": "id", "label": "Pilot name", "type": "text"},
        {"name": "pass", "label": "Passphrase", "type": "password"}]}
    assert app.restart_url == "https://game.example.com/start"
    assert app.client_type == "public" and app.client_secret is None
    assert app.pkce_required is False and app.oidc_custom_claim is True
    assert app.post_logout_redirect_uris == ["https://game.example.com/bye", "spacerun://bye"]
    # The login path reads the cache, which was written through.
    cached = registry["saas.app_cache"].load(lambda: None, app.app_id)
    assert cached.name == "Space Run 2" and cached.require_bound_tokens is True
    assert cached.hosted_form["title"] == "Sign in to Space Run"
    assert cached.client_secret is None and cached.oidc_custom_claim is True
    assert cached.post_logout_redirect_uris == app.post_logout_redirect_uris
    # The two fields, then empty rows up to five.
    assert len(page.html.select("table.rows tbody tr")) == 5
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "app.updated"))
    assert event.app_id == app.app_id
    assert set(event.details["fields"]) == {
        "name", "custom_auth_endpoint", "redirect_uris", "access_token_ttl",
        "refresh_token_ttl", "backchannel", "custom_token_enabled", "require_bound_tokens",
        "hosted_form", "restart_url", "client_type", "pkce_required",
        "post_logout_redirect_uris", "oidc_custom_claim"}
    assert "Space Run 2" not in str(event.details)


def test_unchecked_boxes_turn_settings_off_and_empty_rows_clear_the_form(webapp, db, world,
                                                                          secret_box):
    world.app.backchannel = True
    world.app.hosted_form = {"title": "T", "fields": [{"name": "a", "label": "A",
                                                       "type": "text"}]}
    db.commit()
    _save(webapp, world, 303, backchannel=None)
    app = _reload(db, world)
    assert app.backchannel is False and app.hosted_form is None


def test_nothing_changed_says_so_and_writes_no_audit_row(webapp, db, world):
    page = _save(webapp, world, 303).follow()
    assert "Nothing to save" in page.text
    assert db.scalar(select(AuditEvent).where(AuditEvent.type == "app.updated")) is None


def test_settings_posted_unchanged_are_not_checked_again(webapp, db, world):
    # Saved long ago under other rules (or its name does not resolve right now).
    world.app.custom_auth_endpoint = "ftp://legacy.example.com/auth"
    db.commit()
    _save(webapp, world, 303, name="Renamed")
    app = _reload(db, world)
    assert app.name == "Renamed" and app.custom_auth_endpoint == "ftp://legacy.example.com/auth"


def test_every_bad_redirect_uri_is_shown_inline(webapp, db, world):
    response = _save(webapp, world, 400, name="Changed",
                     redirect_uris="https://ok.example.com/cb\njavascript:alert(1)\n"
                                   "http://evil.example.com/cb\nhttps://x.example.com/#frag")
    errors = response.html.find(id="redirect_uris-error").find_all("li")
    assert len(errors) == 3
    assert "not allowed" in errors[0].text and "https" in errors[1].text
    assert "fragment" in errors[2].text
    textarea = response.html.find(id="redirect_uris")
    assert textarea["aria-invalid"] == "true"
    assert "javascript:alert(1)" in textarea.text  # what was typed comes back
    summary = response.html.find(class_="error-summary")
    assert summary.find("a", href="#redirect_uris").text == "Redirect URIs"
    assert _reload(db, world).name == "Space Run"  # nothing saved


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"access_token_ttl": "5"}, "access_token_ttl", "from 60 to 3600"),
    ({"access_token_ttl": "ten"}, "access_token_ttl", "whole number"),
    ({"refresh_token_ttl": "30"}, "refresh_token_ttl", "from 60"),
    ({"name": "   "}, "name", "1 to 200 characters"),
    ({"custom_auth_endpoint": "ftp://files.example.com/"}, "custom_auth_endpoint", ""),
    ({"restart_url": "javascript:alert(1)"}, "restart_url",
     "The restart URL scheme 'javascript' is not allowed."),
    ({"field_name_0": "state", "field_label_0": "State"}, "hosted_form", "not 'state'"),
    ({"field_name_0": "bad name!", "field_label_0": "X"}, "hosted_form", "needs a name"),
    ({"field_name_0": "", "field_label_0": "Label without a name"}, "hosted_form", "name"),
    ({"field_name_0": "pin", "field_type_0": "checkbox"}, "hosted_form", "type of text"),
], ids=["ttl-low", "ttl-text", "refresh-low", "name-blank", "endpoint-scheme",
        "restart-url", "field-state", "field-name", "field-no-name", "field-type"])
def test_invalid_settings_are_refused_next_to_their_field(webapp, db, world, changes, field,
                                                          message):
    response = _save(webapp, world, 400, **changes)
    error = response.html.find(id=f"{field}-error")
    assert error is not None and message in error.text
    assert not error.text.startswith(field)  # no API field names in the page
    assert db.scalar(select(AuditEvent).where(AuditEvent.type == "app.updated")) is None


def test_delete_needs_the_app_id_typed(webapp, db, world):
    response = webapp.post(_path(world, "/delete"),
                           {"csrf_token": csrf_token(webapp), "confirm_app_id": "nope"},
                           status=400)
    assert "Type the app id exactly" in response.html.find(id="delete-error").text
    assert _reload(db, world) is not None


def test_delete_removes_the_app_and_its_cached_settings(webapp, db, world, registry):
    cache, app_id, path = registry["saas.app_cache"], world.app.app_id, _path(world, "")
    cache.store(world.app)
    response = webapp.post(path + "/delete",
                           {"csrf_token": csrf_token(webapp), "confirm_app_id": f" {app_id} "},
                           status=303)
    assert response.location.endswith("/dashboard/apps")
    assert "deleted" in response.follow().html.find(class_="flash").text
    db.expire_all()
    assert db.scalar(select(App).where(App.app_id == app_id)) is None
    assert cache.redis.get(cache.key(app_id)) is None
    webapp.get(path, status=404)


def _client_secret(db, world) -> ClientSecret | None:
    db.expire_all()
    return db.scalar(select(ClientSecret).where(ClientSecret.app_id == world.app.id))


def test_the_form_shows_the_oidc_settings(webapp, db, world):
    world.app.post_logout_redirect_uris = ["https://app.example.com/bye"]
    db.commit()
    form = webapp.get(_path(world)).forms[1]
    assert form["client_type"].value == "confidential"
    assert form["pkce_required"].checked is True
    assert form["oidc_custom_claim"].checked is False
    assert form["post_logout_redirect_uris"].value == "https://app.example.com/bye"


def test_switching_to_public_deletes_the_client_secret_and_back_shows_a_new_one_once(
        webapp, db, world, registry):
    old = world.extra["client_secret"]
    cache = registry["saas.app_cache"]
    page = _save(webapp, world, 303, client_type="public").follow()
    assert "Settings saved." in page.html.find(class_="flash").text
    assert _client_secret(db, world) is None
    assert cache.load(lambda: None, world.app.app_id).client_secret is None

    response = _save(webapp, world, 200, client_type="confidential")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Settings saved." in response.html.find(class_="flash").text
    shown = response.html.find(id="new-client-secret").text
    assert shown.startswith("cs_") and shown != old
    row = _client_secret(db, world)
    assert row.current_hash == hash_token(shown) and shown not in str(row.__dict__)
    config = cache.load(lambda: None, world.app.app_id)
    assert config.client_secret_matches(shown, time.time())
    assert not config.client_secret_matches(old, time.time())
    assert response.html.find(id="client_type-confidential").has_attr("checked")
    # Shown once: neither the form nor the secrets page shows it again.
    assert shown not in webapp.get(_path(world)).text
    assert shown not in webapp.get(_path(world, "/secrets")).text
    events = db.scalars(select(AuditEvent).where(AuditEvent.type == "app.updated")).all()
    assert [e.details["fields"] for e in events] == [["client_type"], ["client_type"]]
    assert all(shown not in str(e.details) for e in events)


def test_bad_post_logout_redirect_uris_are_shown_inline(webapp, db, world):
    response = _save(webapp, world, 400, post_logout_redirect_uris=(
        "https://ok.example.com/bye\njavascript:alert(1)\nhttp://evil.example.com/bye"))
    errors = response.html.find(id="post_logout_redirect_uris-error").find_all("li")
    assert [e.text for e in errors] == [
        "The post-logout redirect URI scheme 'javascript' is not allowed.",
        "The post-logout redirect URI 'http://evil.example.com/bye' must use https (http is "
        "for loopback)."]
    assert response.html.find(id="post_logout_redirect_uris")["aria-invalid"] == "true"
    summary = response.html.find(class_="error-summary")
    assert summary.find("a", href="#post_logout_redirect_uris").text == \
        "Post-logout redirect URIs"
    assert _reload(db, world).post_logout_redirect_uris == []


def test_an_unknown_client_type_is_refused_and_keeps_the_secret(webapp, db, world):
    response = _save(webapp, world, 400, client_type="trusted")
    assert "public or confidential" in response.html.find(id="client_type-error").text
    assert response.html.find(class_="error-summary").find("a", href="#client_type")
    assert _reload(db, world).client_type == "confidential"
    assert _client_secret(db, world).current_hash == hash_token(world.extra["client_secret"])
