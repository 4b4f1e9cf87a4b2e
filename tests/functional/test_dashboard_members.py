"""Members: the list, invitations (single-use links), joining, roles, removal."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from saas.audit.models import AuditEvent
from saas.crypto import hash_token
from saas.db import utcnow
from saas.tenants.models import Invite, Member, Role
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import add_member, build_world, csrf_token, sign_in

CANNOT_INVITE = "We could not invite this address. Check it, or invite another one."


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    sign_in(webapp, world.owner.email)
    return world


def _confirmed(webapp) -> dict[str, str]:
    """A form's CSRF token and the member's password re-entered."""
    return {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD}


def _invite(webapp, email="friend@example.com", role="admin", status=200):
    return webapp.post("/dashboard/members/invite",
                       {**_confirmed(webapp), "email": email, "role": role},
                       status=status)


def _member(db, member_id) -> Member | None:
    db.expire_all()
    return db.get(Member, member_id)


def test_the_list_shows_members_roles_and_pending_invitations(webapp, world):
    page = webapp.get("/dashboard/members")
    rows = {row.find("th").text.split()[0]: row for row in page.html.select("#members tbody tr")}
    assert "owner" in rows[world.owner.email].text and "(you)" in rows[world.owner.email].text
    assert "admin" in rows[world.admin.email].text
    assert world.invite.email in page.html.find(id="invites").text


def test_an_invitation_is_a_single_use_link(webapp, db, world):
    response = _invite(webapp, email="Friend@Example.com ")
    assert response.headers["Cache-Control"] == "no-store"
    link = response.html.find(id="invite-link").text
    token = link.rsplit("/", 1)[1]
    assert link == f"http://bk.test/dashboard/invite/{token}"
    invite = db.scalar(select(Invite).where(Invite.email == "friend@example.com"))
    assert invite.token_hash == hash_token(token) and invite.role == Role.ADMIN
    assert abs(invite.expires_at - (utcnow() + dt.timedelta(days=7))) < dt.timedelta(minutes=1)
    assert "friend@example.com" in response.html.find(id="invites").text
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "member.invited"))
    assert event.details["email"] == "friend@example.com" and token not in str(event.details)


@pytest.mark.parametrize(("email", "role", "field", "message"), [
    ("not an email", "viewer", "email", "valid email"),
    ("", "viewer", "email", "valid email"),
    ("friend@example.com", "superuser", "role", "owner, admin or viewer"),
], ids=["email", "blank", "role"])
def test_invitation_form_errors(webapp, db, world, email, role, field, message):
    response = _invite(webapp, email=email, role=role, status=400)
    assert message in response.html.find(id=f"{field}-error").text
    assert db.scalar(select(Invite).where(Invite.email == email)) is None


def test_members_cannot_be_invited_twice(webapp, world):
    response = _invite(webapp, email=world.admin.email.upper(), status=400)
    assert response.html.find(id="email-error").text == CANNOT_INVITE


def test_an_address_of_another_tenant_is_refused_without_saying_so(webapp, db, passwords,
                                                                  world):
    """Finding: the refusal told any admin that the address had an account elsewhere."""
    make_member(db, passwords, email="elsewhere@example.com", tenant_name="Other")
    db.commit()
    elsewhere = _invite(webapp, email="elsewhere@example.com", status=400)
    here = _invite(webapp, email=world.admin.email, status=400)
    message = elsewhere.html.find(id="email-error").text
    assert message == here.html.find(id="email-error").text == CANNOT_INVITE
    for word in ("member", "exists", "elsewhere", "account", "already"):
        assert word not in message.lower()
    # The whole answer is the same but for the address typed back into the form.
    assert elsewhere.status == here.status
    assert elsewhere.html.find(id="email-error").parent.find("input")["value"] == \
        "elsewhere@example.com"


def test_inviting_again_replaces_the_pending_link(webapp, db, world):
    first = _invite(webapp).html.find(id="invite-link").text
    _invite(webapp)
    webapp.get(first.replace("http://bk.test", ""), status=404)
    assert len(db.scalars(select(Invite).where(Invite.email == "friend@example.com")).all()) == 1


def test_admins_invite_admins_and_viewers_but_not_owners(webapp, world):
    sign_in(webapp, world.admin.email)
    response = _invite(webapp, role="owner", status=400)
    assert "Only owners can invite owners." in response.html.find(id="role-error").text
    assert "owner" not in [o["value"] for o in response.html.select("#role option")]
    _invite(webapp, role="admin")


def test_joining_through_the_link(webapp, db, world):
    path = f"/dashboard/invite/{world.invite_token}"
    webapp.reset()
    page = webapp.get(path)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.html.find("h1").text == "Join Acme"
    assert world.invite.email in page.text and "viewer" in page.text

    form = page.forms[0]
    form["password"] = "short"
    refused = form.submit(status=400)
    assert "at least 10" in refused.html.find(id="password-error").text

    form = refused.forms[0]
    form["password"] = "a brand new password"
    apps = form.submit(status=303).follow()
    assert "Welcome to Acme. You are signed in." in apps.text
    member = db.scalar(select(Member).where(Member.email == world.invite.email))
    assert member.tenant_id == world.tenant_id and member.role == Role.VIEWER
    assert member.password_hash.startswith("$argon2id$")
    assert world.invite.email in apps.html.find(class_="who").text
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "member.joined"))
    assert event.tenant_id == world.tenant_id and event.details["role"] == "viewer"

    webapp.reset()
    webapp.get(path, status=404)  # used once
    sign_in(webapp, world.invite.email, "a brand new password")


@pytest.mark.parametrize("token", ["made-up-token", "x" * 200])
def test_unknown_links_are_not_valid(webapp, token):
    page = webapp.get(f"/dashboard/invite/{token}", status=404)
    assert "This invitation is not valid" in page.text


def test_expired_links_are_not_valid(webapp, db, world):
    world.invite.expires_at = utcnow() - dt.timedelta(seconds=1)
    db.commit()
    webapp.get(f"/dashboard/invite/{world.invite_token}", status=404)


def test_a_revoked_invitation_stops_working(webapp, db, world):
    page = webapp.post(f"/dashboard/members/invites/{world.invite.id}/revoke",
                       _confirmed(webapp), status=303).follow()
    assert "no longer works" in page.html.find(class_="flash").text
    webapp.get(f"/dashboard/invite/{world.invite_token}", status=404)


def test_owners_change_roles(webapp, db, world):
    page = webapp.post(f"/dashboard/members/{world.admin.id}/role",
                       {**_confirmed(webapp), "role": "viewer"}, status=303).follow()
    assert f"{world.admin.email} is now viewer." in page.text
    assert _member(db, world.admin.id).role == Role.VIEWER
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "member.role_changed"))
    assert event.details == {"by": world.owner.email, "email": world.admin.email,
                             "from": "admin", "to": "viewer"}


def test_the_last_owner_cannot_step_down_or_leave(webapp, db, world):
    for action, data in (("role", {"role": "admin"}), ("remove", {})):
        page = webapp.post(f"/dashboard/members/{world.owner.id}/{action}",
                           {**_confirmed(webapp), **data}, status=400)
        error = page.html.find(id=f"member-error-{world.owner.id}")
        assert "at least one owner" in error.text
    assert _member(db, world.owner.id).role == Role.OWNER


def test_with_a_second_owner_an_owner_may_step_down(webapp, db, passwords, world):
    add_member(db, passwords, world.tenant_id, Role.OWNER)
    db.commit()
    webapp.post(f"/dashboard/members/{world.owner.id}/role",
                {**_confirmed(webapp), "role": "admin"}, status=303)
    assert _member(db, world.owner.id).role == Role.ADMIN


def test_owners_remove_members(webapp, db, world):
    admin_id, email = world.admin.id, world.admin.email
    page = webapp.post(f"/dashboard/members/{admin_id}/remove",
                       _confirmed(webapp), status=303).follow()
    assert f"{email} removed." in page.text
    assert _member(db, admin_id) is None
    webapp.reset()
    form = webapp.get("/dashboard/signin").forms[0]
    form["email"], form["password"] = email, DEFAULT_PASSWORD
    form.submit(status=401)


def test_an_owner_who_leaves_is_signed_out(webapp, db, passwords, world):
    add_member(db, passwords, world.tenant_id, Role.OWNER)
    db.commit()
    response = webapp.post(f"/dashboard/members/{world.owner.id}/remove",
                           _confirmed(webapp), status=303)
    assert response.location.endswith("/dashboard/signin")
    assert webapp.get("/dashboard/apps").status_int == 303


def test_a_removed_members_session_ends(webapp, db, world):
    sign_in(webapp, world.admin.email)
    webapp.get("/dashboard/apps", status=200)
    db.delete(_member(db, world.admin.id))
    db.commit()
    webapp.get("/dashboard/apps", status=303)


def test_a_removed_members_pending_invitations_stop_working(webapp, db, world):
    """Finding: an invitation made by a member who was later removed still admitted
    its holder."""
    sign_in(webapp, world.admin.email)
    link = _invite(webapp, email="via-admin@example.com").html.find(id="invite-link").text
    sign_in(webapp, world.owner.email)
    webapp.post(f"/dashboard/members/{world.admin.id}/remove",
                _confirmed(webapp), status=303)
    webapp.reset()
    assert webapp.get(link, status=404).html.find("form", method="post") is None
    db.expire_all()
    assert db.scalar(select(Member).where(Member.email == "via-admin@example.com")) is None
    assert db.scalar(select(Invite).where(Invite.email == "via-admin@example.com")) is None
    event = db.scalar(select(AuditEvent).where(AuditEvent.type == "member.removed"))
    assert event.details["invites_revoked"] == ["via-admin@example.com"]
    # The owner's own invitation is untouched.
    webapp.get(f"/dashboard/invite/{world.invite_token}", status=200)


def test_an_invitation_whose_inviter_is_gone_admits_nobody(webapp, db, world):
    # A member deleted behind the dashboard's back (ON DELETE SET NULL).
    world.invite.invited_by_id = None
    db.commit()
    webapp.reset()
    webapp.get(f"/dashboard/invite/{world.invite_token}", status=404)
