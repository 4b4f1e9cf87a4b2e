"""Who may do what on the dashboard, table-driven over every page and action:
tenant isolation (404 and no change), the viewer role (read-only), CSRF, and
the audit row each change writes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from saas.audit.models import AuditEvent
from saas.tenants.models import Role
from tests.functional.dashboard_helpers import (
    ACTIONS,
    PAGES,
    add_member,
    build_world,
    csrf_token,
    post,
    sign_in,
    snapshot,
)

ID_ACTIONS = [a for a in ACTIONS if a.ids]
ID_PAGES = [(name, path) for name, path, ids in PAGES if ids]


@pytest.fixture
def world(db, passwords, secret_box):
    return build_world(db, passwords, secret_box)


@pytest.fixture
def intruder(db, passwords, secret_box, webapp, world):
    """An owner of another tenant, with an app and users of their own, signed in."""
    other = build_world(db, passwords, secret_box)
    sign_in(webapp, other.owner.email)
    return other


@pytest.mark.parametrize(("name", "path"), ID_PAGES, ids=[name for name, _ in ID_PAGES])
def test_another_tenants_pages_are_not_found(webapp, world, intruder, name, path):
    webapp.get(path(world), status=404)
    # The intruder's own copy of the page is there: the 404 is about the ids.
    webapp.get(path(intruder), status=200)


@pytest.mark.parametrize("action", ID_ACTIONS, ids=[a.name for a in ID_ACTIONS])
def test_another_tenants_ids_are_not_found_and_nothing_changes(webapp, db, world, intruder,
                                                                action):
    token = csrf_token(webapp)
    before = snapshot(db)
    post(webapp, action.path(world), action.data(world), token=token, status=404)
    assert snapshot(db) == before


@pytest.fixture
def viewer(db, passwords, webapp, world):
    member = add_member(db, passwords, world.tenant_id, Role.VIEWER)
    db.commit()
    sign_in(webapp, member.email)
    return member


@pytest.mark.parametrize(("name", "path", "ids"), PAGES, ids=[p[0] for p in PAGES])
def test_a_viewer_sees_every_page_without_change_forms(webapp, world, viewer, name, path, ids):
    page = webapp.get(path(world), status=200)
    if page.content_type == "text/html":
        change_forms = [form.action for form in page.forms.values()
                        if form.method.lower() == "post"
                        and not form.action.endswith("/dashboard/signout")]
        assert change_forms == []


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_a_viewer_may_not_change_anything(webapp, db, world, viewer, action):
    token = csrf_token(webapp)
    before = snapshot(db)
    post(webapp, action.path(world), action.data(world), token=token, status=403)
    assert snapshot(db) == before


@pytest.mark.parametrize("action", [a for a in ACTIONS if a.name.startswith("member.")
                                    and a.name != "member.invite"],
                         ids=lambda a: a.name)
def test_an_admin_may_not_change_members(webapp, db, world, action):
    sign_in(webapp, world.admin.email)
    token = csrf_token(webapp)
    before = snapshot(db)
    post(webapp, action.path(world), action.data(world), token=token, status=403)
    assert snapshot(db) == before


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_every_change_writes_its_audit_event(webapp, db, world, action):
    sign_in(webapp, world.owner.email)
    token = csrf_token(webapp)
    count = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.tenant_id == world.tenant_id, AuditEvent.type == action.event)
    assert db.scalar(count) == 0
    post(webapp, action.path(world), action.data(world), token=token, status=action.ok)
    assert db.scalar(count) == 1
    event = db.scalar(select(AuditEvent).where(AuditEvent.tenant_id == world.tenant_id,
                                               AuditEvent.type == action.event))
    assert event.details["by"] == world.owner.email
    assert event.ip and event.request_id


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_every_form_needs_its_csrf_token(webapp, db, world, action):
    sign_in(webapp, world.owner.email)
    csrf_token(webapp)  # the session has a token; the request just does not carry it
    before = snapshot(db)
    post(webapp, action.path(world), action.data(world), token=None, status=400)
    post(webapp, action.path(world), action.data(world), token="forged", status=400)
    assert snapshot(db) == before


@pytest.mark.parametrize(("path", "data"), [
    ("/dashboard/signin", {"email": "x@example.com", "password": "whatever12"}),
    ("/dashboard/signup", {"tenant_name": "X", "email": "x@example.com",
                           "password": "long enough pass"}),
    ("/dashboard/signout", {}),
], ids=["signin", "signup", "signout"])
def test_anonymous_forms_need_their_csrf_token(webapp, db, path, data):
    webapp.get("/dashboard/signin")
    before = snapshot(db)
    post(webapp, path, data, token=None, status=400)
    assert snapshot(db) == before


def test_accepting_an_invitation_needs_the_csrf_token(webapp, db, world):
    path = f"/dashboard/invite/{world.invite_token}"
    webapp.get(path)
    before = snapshot(db)
    post(webapp, path, {"password": "a brand new password"}, token=None, status=400)
    assert snapshot(db) == before


def test_anonymous_posts_go_to_sign_in_and_change_nothing(webapp, db, world):
    before = snapshot(db)
    for action in ACTIONS:
        response = webapp.post(action.path(world), action.data(world), status=303)
        assert "/dashboard/signin" in response.location
    assert snapshot(db) == before
