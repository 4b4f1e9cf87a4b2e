"""Route contexts: the tenant's scope, resolved once, with an ACL.

An app is looked up only among the signed-in member's tenant's apps, so a
foreign or unknown ``app_id`` is simply "not found" (404, never 403).
"""

from __future__ import annotations

from pyramid.authorization import DENY_ALL, Allow, Authenticated
from pyramid.httpexceptions import HTTPNotFound

from saas.apps.models import App
from saas.apps.services import app_of_tenant
from saas.security import Permission
from saas.tenants.models import Role


def _tenant_acl(tenant_id) -> list:
    return [
        (Allow, f"tenant:{tenant_id}", Permission.VIEW),
        (Allow, f"tenant:{tenant_id}:{Role.OWNER.value}", Permission.MANAGE),
        (Allow, f"tenant:{tenant_id}:{Role.ADMIN.value}", Permission.MANAGE),
        DENY_ALL,
    ]


class TenantContext:
    """The signed-in member's tenant (or nothing, for anonymous callers)."""

    def __init__(self, request) -> None:
        self.member = request.member
        self.tenant_id = self.member.tenant_id if self.member else None

    @property
    def __acl__(self) -> list:
        if self.tenant_id is None:
            return [(Allow, Authenticated, ()), DENY_ALL]
        return _tenant_acl(self.tenant_id)


class AppContext(TenantContext):
    def __init__(self, request, app: App) -> None:
        super().__init__(request)
        self.app = app


def app_context(request) -> AppContext | TenantContext:
    member = request.member
    if member is None:
        # Anonymous: the view's permission check sends them to sign in.
        return TenantContext(request)
    app = app_of_tenant(request.db, member.tenant_id, request.matchdict["app_id"])
    if app is None:
        raise HTTPNotFound()
    return AppContext(request, app)
