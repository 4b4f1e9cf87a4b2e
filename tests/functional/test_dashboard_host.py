"""Hosted sign-in forms of tenants must not share an origin with the dashboard's
sign-in (a look-alike page would be autofilled with dashboard passwords): the
dashboard's fields carry their own autocomplete section, and with
``saas.dashboard_host`` the dashboard answers only on its host and the hosted
forms never there."""

from __future__ import annotations

import uuid

import pytest
import webtest
from sqlalchemy.orm import sessionmaker

from saas.config import configure
from tests.functional.dashboard_helpers import build_world

SECTION = "section-bridgekeeper-dashboard"


@pytest.mark.parametrize(("path", "fields"), [
    ("/dashboard/signin", {"email": "username", "password": "current-password"}),
    ("/dashboard/signup", {"email": "username", "password": "new-password"}),
])
def test_the_dashboards_credential_fields_have_their_own_section(webapp, path, fields):
    page = webapp.get(path)
    for name, token in fields.items():
        assert page.html.find("input", attrs={"name": name})["autocomplete"] == \
            f"{SECTION} {token}"


def test_the_invitation_and_re_entry_fields_too(webapp, db, passwords, secret_box):
    world = build_world(db, passwords, secret_box)
    page = webapp.get(f"/dashboard/invite/{world.invite_token}")
    assert page.html.find("input", attrs={"name": "password"})["autocomplete"] == \
        f"{SECTION} new-password"


@pytest.fixture
def split(app_settings, db_connection, redis_client):
    prefix = f"{app_settings['saas.redis_prefix']}:host-{uuid.uuid4().hex[:8]}"
    app = configure(dict(app_settings, **{"saas.redis_prefix": prefix,
                                          "saas.dashboard_host": "console.bk.test"}))
    app = app.make_wsgi_app()
    app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield webtest.TestApp(app)
    app.registry["saas.db_engine"].dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def test_with_a_dashboard_host_each_side_answers_only_on_its_own_host(split, db, passwords,
                                                                      secret_box):
    world = build_world(db, passwords, secret_box)
    console, public = {"HTTP_HOST": "console.bk.test"}, {"HTTP_HOST": "bk.test"}
    split.get("/dashboard/signin", extra_environ=console, status=200)
    split.get("/dashboard/signin", extra_environ=public, status=404)
    split.get("/dashboard/apps", extra_environ=public, status=404)
    split.get("/", extra_environ=public, status=404)
    login = f"/v1/apps/{world.app.app_id}/login"
    split.get(login, extra_environ=console, status=404)
    assert split.get(login, extra_environ=public, status="*").status_int != 404
    # Everything else is the same on both.
    split.get("/healthz", extra_environ=console, status=200)
    split.get("/healthz", extra_environ=public, status=200)
