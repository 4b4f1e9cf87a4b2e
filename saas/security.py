"""Who is calling, and what they may do.

Dashboard members are identified by their server-side session; permissions
come from ACLs on route contexts (``saas.dashboard.contexts``). The management
API's bearer keys and the login protocol's bearer tokens arrive with their own
issues and plug in here.
"""

from __future__ import annotations

import enum
import uuid

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from sqlalchemy import select

from saas.tenants.models import Member

SESSION_MEMBER_KEY = "member_id"


class Permission(enum.StrEnum):
    VIEW = "view"
    MANAGE = "manage"


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
        return ACLHelper().permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        # A fresh session id at sign-in defeats session fixation; a fresh
        # CSRF token goes with it.
        request.session.rotate()
        request.session[SESSION_MEMBER_KEY] = str(userid)
        request.session.new_csrf_token()
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        return []


def _member(request) -> Member | None:
    # Requests without a session cookie never touch Redis.
    if "bk_session" not in request.cookies:
        return None
    raw = request.session.get(SESSION_MEMBER_KEY)
    if not raw:
        return None
    try:
        member_id = uuid.UUID(raw)
    except ValueError:
        return None
    return request.db.scalar(select(Member).where(Member.id == member_id))


def includeme(config) -> None:
    config.set_security_policy(SessionSecurityPolicy())
    config.add_request_method(_member, "member", reify=True)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
