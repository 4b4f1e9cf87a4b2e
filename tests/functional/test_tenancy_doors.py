"""The dashboard and the management API are two doors to one tenancy: the same
change through either records the same audit row (only the actor differs),
stages the same webhooks and leaves the login path's cache the same. These are
the places where the two doors used to differ (#15)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from saas.apikeys.services import create_api_key
from saas.apps.models import App, SecretKind
from saas.audit.models import AuditEvent
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.models import WebhookEvent
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import World, build_world, csrf_token, sign_in
from tests.functional.test_manage_support import Api

ACTOR_KEYS = {"by", "via", "api_key_prefix"}


@dataclass
class Doors:
    world: World
    webapp: object
    api: Api
    key_prefix: str

    def post(self, door: str, dashboard_path: str, api_path: str, **form: str) -> None:
        """POST one action through ``door``; both answer with success."""
        if door == "api":
            self.api.post(api_path, status=204)
        else:
            self.webapp.post(dashboard_path, {"csrf_token": csrf_token(self.webapp), **form},
                             status=303)

    def actor(self, door: str) -> dict[str, str]:
        if door == "api":
            return {"via": "api", "api_key_prefix": self.key_prefix}
        return {"by": self.world.owner.email}


@pytest.fixture
def doors(db, passwords, secret_box, webapp) -> Doors:
    world = build_world(db, passwords, secret_box)
    key, plaintext = create_api_key(db, world.tenant_id, "doors",
                                    created_by_id=world.owner.id)
    # A subscriber, so that user changes stage webhook events.
    create_endpoint(db, secret_box, world.app, {"url": "https://hooks.example.com/doors",
                                                "events": ["user.disabled", "user.deleted",
                                                           "session.revoked"]})
    db.commit()
    sign_in(webapp, world.owner.email)
    return Doors(world, webapp, Api(webapp, plaintext), key.prefix)


def _events(db, doors: Doors, type_: str) -> list[AuditEvent]:
    """This world's audit rows of a type (live-server tests commit rows of their own)."""
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(
        AuditEvent.type == type_, AuditEvent.tenant_id == doors.world.tenant_id)))


def _hooks(db, doors: Doors, type_: str) -> list[WebhookEvent]:
    return list(db.scalars(select(WebhookEvent).where(
        WebhookEvent.type == type_, WebhookEvent.app_id == doors.world.app.id)))


def _user_paths(doors: Doors, action: str) -> tuple[str, str]:
    app_id, user_id = doors.world.app.app_id, doors.world.user.id
    return (f"/dashboard/apps/{app_id}/users/{user_id}/{action}",
            f"apps/{app_id}/users/{user_id}/{action}")


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_revoking_sessions_records_the_same_details_through_either_door(db, doors, door):
    doors.post(door, *_user_paths(doors, "revoke-sessions"))
    (event,) = _events(db, doors, "session.revoked")
    assert event.details == {"sessions": 0, **doors.actor(door)}
    assert event.user_id == doors.world.user.id and event.external_id == "alice"
    (hook,) = _hooks(db, doors, "session.revoked")
    assert hook.data["cause"] == "revoked_by_tenant" and hook.data["sessions_revoked"] == 0


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_disabling_twice_records_and_announces_it_once_through_either_door(db, doors, door):
    for _ in range(2):
        doors.post(door, *_user_paths(doors, "disable"))
    (event,) = _events(db, doors, "user.disabled")
    assert event.details == doors.actor(door)
    assert len(_hooks(db, doors, "user.disabled")) == 1
    # Enabling a user who is enabled changes nothing either.
    doors.post(door, *_user_paths(doors, "enable"))
    doors.post(door, *_user_paths(doors, "enable"))
    assert len(_events(db, doors, "user.enabled")) == 1


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_revoking_a_previous_secret_that_is_gone_records_nothing_in_either_door(
        db, doors, door):
    app_id = doors.world.app.app_id
    paths = (f"/dashboard/apps/{app_id}/secrets/custom_auth/revoke-previous",
             f"apps/{app_id}/secrets/custom_auth/revoke-previous")
    doors.post(door, *paths)  # the world's app has a previous custom-auth secret
    doors.post(door, *paths)  # now it has none
    (event,) = _events(db, doors, "secret.revoked")
    assert event.details == {"kind": SecretKind.CUSTOM_AUTH.value, **doors.actor(door)}


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_the_client_secret_rotates_and_revokes_alike_through_either_door(db, doors, door,
                                                                       registry):
    app_id, old = doors.world.app.app_id, doors.world.extra["client_secret"]
    rotate = f"apps/{app_id}/secrets/client_secret/rotate"
    if door == "api":
        new = doors.api.post(rotate, {"grace_seconds": 3600}).json["current"]
    else:
        page = doors.webapp.post("/dashboard/" + rotate, {
            "csrf_token": csrf_token(doors.webapp), "password": DEFAULT_PASSWORD,
            "grace_hours": "1"})
        new = page.html.find(id="new-secret").text
    (event,) = _events(db, doors, "secret.rotated")
    assert event.details == {"kind": "client_secret", "grace_seconds": 3600,
                             **doors.actor(door)}
    config = registry["saas.app_cache"].load(lambda: None, app_id)
    assert config.client_secret_matches(new, time.time())
    assert config.client_secret_matches(old, time.time())
    doors.post(door, f"/dashboard/apps/{app_id}/secrets/client_secret/revoke-previous",
               f"apps/{app_id}/secrets/client_secret/revoke-previous")
    (event,) = _events(db, doors, "secret.revoked")
    assert event.details == {"kind": "client_secret", **doors.actor(door)}
    assert not registry["saas.app_cache"].load(lambda: None, app_id).client_secret_matches(
        old, time.time())


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_deleting_an_app_is_the_same_through_either_door(db, doors, door, registry):
    app_id = doors.world.app.app_id
    cache = registry["saas.app_cache"]
    cache.store(doors.world.app)
    if door == "api":
        doors.api.delete(f"apps/{app_id}")
    else:
        doors.post(door, f"/dashboard/apps/{app_id}/delete", "", confirm_app_id=app_id)
    (event,) = _events(db, doors, "app.deleted")
    assert event.app_id == app_id and event.tenant_id == doors.world.tenant_id
    assert event.details == {"name": "Space Run", **doors.actor(door)}
    assert db.scalar(select(App).where(App.app_id == app_id)) is None
    assert cache.redis.get(cache.key(app_id)) is None


@pytest.mark.parametrize("door", ["dashboard", "api"])
def test_a_foreign_id_is_not_found_in_each_doors_own_shape(db, doors, door, passwords,
                                                           secret_box, webapp):
    other = build_world(db, passwords, secret_box, email="other-owner@example.com")
    sign_in(webapp, doors.world.owner.email)  # build_world signs nobody in; stay the owner
    path = f"apps/{other.app.app_id}/users/{other.user.id}"
    if door == "api":
        error = doors.api.get(path, status=404).json
        assert (error["reason"], error["error_description"]) == ("not_found", "no such app")
    else:
        page = webapp.get("/dashboard/" + path, status=404)
        assert page.content_type == "text/html"
