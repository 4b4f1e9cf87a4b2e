"""Shared by the dashboard's functional tests: a tenant's world, sign-in, and the
table of every page and every change action the dashboard has."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from saas.apikeys.models import ApiKey
from saas.apikeys.services import create_api_key
from saas.apps.models import App, SecretKind
from saas.apps.services import rotate_secret
from saas.audit.services import record_event
from saas.db import utcnow
from saas.tenants.invites import create_invite
from saas.tenants.models import Invite, Member, Role
from saas.users.models import EndUser, end_user_id
from tests.factories import DEFAULT_PASSWORD, make_app, make_member


def sign_in(webapp, email: str, password: str = DEFAULT_PASSWORD) -> None:
    webapp.reset()
    form = webapp.get("/dashboard/signin").forms[0]
    form["email"] = email
    form["password"] = password
    form.submit(status=303)


def csrf_token(webapp) -> str:
    """The signed-in session's CSRF token, read from the sign-out form."""
    return webapp.get("/dashboard/apps").forms[0]["csrf_token"].value


def add_member(db, passwords, tenant_id: uuid.UUID, role: Role,
               email: str | None = None, verified: bool = True) -> Member:
    member = Member(tenant_id=tenant_id, role=role,
                    email=email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com",
                    password_hash=passwords.hash(DEFAULT_PASSWORD),
                    email_verified_at=utcnow() if verified else None)
    db.add(member)
    db.flush()
    return member


def make_end_user(db, app: App, external_id: str, **fields: Any) -> EndUser:
    user = EndUser(id=end_user_id(app.id, external_id), app_id=app.id,
                   external_id=external_id, **fields)
    db.add(user)
    db.flush()
    return user


def make_event(db, app: App, type_: str, *, at: dt.datetime | None = None, **fields: Any):
    event = record_event(db, type_, tenant_id=app.tenant_id, app_id=app.app_id, **fields)
    event.at = at or utcnow()
    db.flush()
    return event


@dataclass
class World:
    """One tenant with something of every kind a dashboard action touches."""

    owner: Member
    admin: Member
    app: App
    user: EndUser
    disabled_user: EndUser
    key: ApiKey
    invite: Invite
    invite_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.owner.tenant_id


def build_world(db, passwords, secret_box, *, email: str | None = None) -> World:
    owner = make_member(db, passwords, email=email)
    admin = add_member(db, passwords, owner.tenant_id, Role.ADMIN)
    # A confidential client, so that its client secret's actions have a secret to act on.
    app, secrets = make_app(db, secret_box, owner.tenant_id, name="Space Run",
                            client_type="confidential")
    rotate_secret(app, SecretKind.CUSTOM_AUTH, secret_box)  # a previous secret to revoke
    user = make_end_user(db, app, "alice", custom={"plan": "gold"},
                         profile={"name": "Alice", "langs": ["en", "fr"]},
                         last_login_at=utcnow())
    disabled_user = make_end_user(db, app, "bob", disabled=True)
    key, _ = create_api_key(db, owner.tenant_id, "CI deploy", created_by_id=owner.id)
    invite, token = create_invite(db, owner, f"new-{uuid.uuid4().hex[:6]}@example.com",
                                  Role.VIEWER)
    db.commit()  # to the savepoint; the web requests share the connection
    return World(owner, admin, app, user, disabled_user, key, invite, token,
                 extra={"client_secret": secrets["client_secret"]})


def settings_form(app: App, **changes: Any) -> dict[str, Any]:
    """The settings form as a browser posts it, with the app's current values."""
    data: dict[str, Any] = {
        "name": app.name,
        "custom_auth_endpoint": app.custom_auth_endpoint or "",
        "redirect_uris": "\n".join(app.redirect_uris),
        "access_token_ttl": str(app.access_token_ttl),
        "refresh_token_ttl": str(app.refresh_token_ttl),
        "restart_url": app.restart_url or "",
        "hosted_title": "",
        "client_type": app.client_type,
        "post_logout_redirect_uris": "\n".join(app.post_logout_redirect_uris),
    }
    for toggle in ("backchannel", "custom_token_enabled", "require_bound_tokens",
                   "pkce_required", "oidc_custom_claim"):
        if getattr(app, toggle):
            data[toggle] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Action:
    """A POST the dashboard accepts: where, what, and the audit event it writes."""

    name: str
    path: Callable[[World], str]
    data: Callable[[World], dict[str, Any]]
    event: str | None
    ids: bool = True  # the path carries an app, user, key, member or invite id
    ok: int = 303  # the owner's answer


def _app(w: World, rest: str = "") -> str:
    return f"/dashboard/apps/{w.app.app_id}{rest}"


def _user(w: World, user: EndUser | None = None, rest: str = "") -> str:
    return _app(w, f"/users/{(user or w.user).id}{rest}")


ACTIONS: tuple[Action, ...] = (
    Action("app.create", lambda w: "/dashboard/apps/new",
           lambda w: {"name": "New one", "redirect_uris": "https://x.example.com/cb"},
           "app.created", ids=False),
    Action("app.settings", lambda w: _app(w, "/settings"),
           lambda w: settings_form(w.app, name="Renamed"), "app.updated"),
    Action("app.delete", lambda w: _app(w, "/delete"),
           lambda w: {"confirm_app_id": w.app.app_id}, "app.deleted"),
    Action("secrets.reveal", lambda w: _app(w, "/secrets/reveal"),
           lambda w: {"password": DEFAULT_PASSWORD}, "secret.revealed", ok=200),
    Action("secret.rotate", lambda w: _app(w, "/secrets/custom_token/rotate"),
           lambda w: {"password": DEFAULT_PASSWORD, "grace_hours": "24"}, "secret.rotated",
           ok=200),
    Action("client_secret.rotate", lambda w: _app(w, "/secrets/client_secret/rotate"),
           lambda w: {"password": DEFAULT_PASSWORD, "grace_hours": "1"}, "secret.rotated",
           ok=200),
    Action("secret.revoke_previous", lambda w: _app(w, "/secrets/custom_auth/revoke-previous"),
           lambda w: {}, "secret.revoked"),
    Action("user.disable", lambda w: _user(w, rest="/disable"), lambda w: {}, "user.disabled"),
    Action("user.enable", lambda w: _user(w, w.disabled_user, "/enable"), lambda w: {},
           "user.enabled"),
    Action("user.revoke_sessions", lambda w: _user(w, rest="/revoke-sessions"), lambda w: {},
           "session.revoked"),
    Action("user.delete", lambda w: _user(w, rest="/delete"), lambda w: {"confirm": "yes"},
           "user.deleted"),
    Action("key.create", lambda w: "/dashboard/api-keys",
           lambda w: {"name": "Nightly", "password": DEFAULT_PASSWORD},
           "api_key.created", ids=False, ok=200),
    Action("key.revoke", lambda w: f"/dashboard/api-keys/{w.key.id}/revoke", lambda w: {},
           "api_key.revoked"),
    Action("member.invite", lambda w: "/dashboard/members/invite",
           lambda w: {"email": "friend@example.com", "role": "admin", "password": DEFAULT_PASSWORD},
           "member.invited",
           ids=False, ok=200),
    Action("member.role", lambda w: f"/dashboard/members/{w.admin.id}/role",
           lambda w: {"role": "viewer", "password": DEFAULT_PASSWORD}, "member.role_changed"),
    Action("member.remove", lambda w: f"/dashboard/members/{w.admin.id}/remove",
           lambda w: {"password": DEFAULT_PASSWORD}, "member.removed"),
    Action("invite.revoke", lambda w: f"/dashboard/members/invites/{w.invite.id}/revoke",
           lambda w: {}, "member.invite_revoked"),
)

# Every page a member can GET, with the ids of the world it is drawn from.
PAGES: tuple[tuple[str, Callable[[World], str], bool], ...] = (
    ("apps", lambda w: "/dashboard/apps", False),
    ("apps.new", lambda w: "/dashboard/apps/new", False),
    ("app.overview", lambda w: _app(w), True),
    ("app.overview.30d", lambda w: _app(w, "?range=30d"), True),
    ("app.settings", lambda w: _app(w, "/settings"), True),
    ("app.secrets", lambda w: _app(w, "/secrets"), True),
    ("app.users", lambda w: _app(w, "/users"), True),
    ("app.users.search", lambda w: _app(w, "/users?q=al"), True),
    ("app.user", lambda w: _user(w), True),
    ("app.audit", lambda w: _app(w, "/audit"), True),
    ("app.audit.filtered", lambda w: _app(w, "/audit?type=login.failed&outcome=failure"), True),
    ("app.audit.csv", lambda w: _app(w, "/audit.csv"), True),
    ("keys", lambda w: "/dashboard/api-keys", False),
    ("members", lambda w: "/dashboard/members", False),
)

SNAPSHOT_TABLES = ("tenants", "members", "member_invites", "apps", "app_secrets",
                   "client_secrets", "signing_keys", "end_users", "api_keys", "audit_events")


def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every table, to show that a refused request changed nothing."""
    rows = {}
    for table in SNAPSHOT_TABLES:
        query = text(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 (constant names)
        rows[table] = [tuple(row) for row in db.execute(query)]
    return rows


def post(webapp, path: str, data: dict[str, Any], *, token: str | None, status: int | str):
    body = dict(data)
    if token is not None:
        body["csrf_token"] = token
    return webapp.post(path, body, status=status)
