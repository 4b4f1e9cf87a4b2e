"""Who is calling, and what they may do.

Two ways in, chosen by path (``PathSecurityPolicy``):

* paths under ``/v1/manage`` — a tenant API key, ``Authorization: Bearer
  bk_…`` (``ApiKeySecurityPolicy``). A session cookie counts for nothing
  there, so the JSON API needs no CSRF protection: a browser never attaches
  a bearer key by itself.
* everything else — the dashboard member's server-side session
  (``SessionSecurityPolicy``).

Both give the same principals, ``tenant:<id>`` and ``tenant:<id>:<role>``;
permissions come from the one ACL of the route contexts both doors share
(``saas.tenancy.contexts``). An API key acts with its creator's *current*
role, capped at ``admin`` (a viewer's key only reads; no key manages members),
and is no key at all once its creator has left the tenant.
The login protocol's bearer tokens are checked by its own views.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from sqlalchemy import select

from saas.apikeys.services import find_active_key
from saas.dashboard_sessions import MEMBER_KEY, SIGNED_IN_AT
from saas.tenants.models import Member, Role

SESSION_MEMBER_KEY = MEMBER_KEY
MANAGE_PATH = "/v1/manage"


class Permission(enum.StrEnum):
    VIEW = "view"  # every member, every API key
    MANAGE = "manage"  # owners, admins and API keys: change apps, users, webhooks, keys
    MANAGE_MEMBERS = "manage_members"  # owners only: change members' roles, remove members


def _permits(context, principals: list[str], permission) -> bool:
    return ACLHelper().permits(context, principals, permission)


class SessionSecurityPolicy:
    def identity(self, request) -> Member | None:
        return request.member

    def authenticated_userid(self, request) -> str | None:
        member = request.member
        return str(member.id) if member else None

    def permits(self, request, context, permission):
        principals = [Everyone]
        member = request.member
        if member is not None:
            principals += [
                Authenticated,
                f"member:{member.id}",
                f"tenant:{member.tenant_id}",
                f"tenant:{member.tenant_id}:{member.role.value}",
            ]
        return _permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        # A fresh session id at sign-in defeats session fixation; a fresh
        # CSRF token goes with it.
        request.session.rotate()
        request.session.restart_clock()
        request.session[SESSION_MEMBER_KEY] = str(userid)
        request.session[SIGNED_IN_AT] = time.time()
        request.session.new_csrf_token()
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        return []


@dataclass(frozen=True)
class ApiKeyIdentity:
    """A live tenant API key; it acts with its creator's role (at most ``admin``)."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID
    prefix: str
    role: Role


class ApiKeySecurityPolicy:
    """``Authorization: Bearer <tenant API key>`` for the management API."""

    def identity(self, request) -> ApiKeyIdentity | None:
        return request.api_key

    def authenticated_userid(self, request) -> str | None:
        identity = request.api_key
        return f"api_key:{identity.key_id}" if identity else None

    def permits(self, request, context, permission):
        principals = [Everyone]
        identity = request.api_key
        if identity is not None:
            principals += [
                Authenticated,
                f"api_key:{identity.key_id}",
                f"tenant:{identity.tenant_id}",
                f"tenant:{identity.tenant_id}:{identity.role.value}",
            ]
        return _permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []  # keys are presented on every request, never remembered

    def forget(self, request, **kw):
        return []


def is_manage_path(request) -> bool:
    path = request.path_info
    return path == MANAGE_PATH or path.startswith(MANAGE_PATH + "/")


class PathSecurityPolicy:
    """API keys under ``/v1/manage``, dashboard sessions everywhere else."""

    def __init__(self) -> None:
        self.session = SessionSecurityPolicy()
        self.api_key = ApiKeySecurityPolicy()

    def _policy(self, request):
        return self.api_key if is_manage_path(request) else self.session

    def identity(self, request):
        return self._policy(request).identity(request)

    def authenticated_userid(self, request):
        return self._policy(request).authenticated_userid(request)

    def permits(self, request, context, permission):
        return self._policy(request).permits(request, context, permission)

    def remember(self, request, userid, **kw):
        return self._policy(request).remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self._policy(request).forget(request, **kw)


def bearer_value(request) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header, if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _api_key(request) -> ApiKeyIdentity | None:
    presented = bearer_value(request)
    if presented is None:
        return None
    key = find_active_key(request.db, presented)
    if key is None:
        return None
    creator = key.created_by
    # No creator (removed, or a key from before keys had owners): no key at all.
    if creator is None or creator.tenant_id != key.tenant_id:
        return None
    role = Role.VIEWER if creator.role == Role.VIEWER else Role.ADMIN
    return ApiKeyIdentity(key_id=key.id, tenant_id=key.tenant_id, prefix=key.prefix, role=role)


def session_is_current(session, member: Member) -> bool:
    """False for a session begun before the member's ``sessions_valid_after``
    (a password, email or factor change, or "sign out everywhere else")."""
    cutoff = member.sessions_valid_after
    if cutoff is None:
        return True
    signed_in_at = session.get(SIGNED_IN_AT, session.created)
    return signed_in_at >= cutoff.timestamp()


def _member(request) -> Member | None:
    # Requests without a session cookie never touch Redis.
    if request.registry["saas.session_cookie"] not in request.cookies:
        return None
    raw = request.session.get(SESSION_MEMBER_KEY)
    if not raw:
        return None
    try:
        member_id = uuid.UUID(raw)
    except ValueError:
        return None
    member = request.db.scalar(select(Member).where(Member.id == member_id))
    if member is not None and not session_is_current(request.session, member):
        request.session.invalidate()  # over: the cookie goes, and the data with it
        return None
    return member


def includeme(config) -> None:
    config.set_security_policy(PathSecurityPolicy())
    config.add_request_method(_member, "member", reify=True)
    config.add_request_method(_api_key, "api_key", reify=True)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
