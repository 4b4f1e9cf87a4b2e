"""Route contexts: the tenant's scope, resolved once, with an ACL.

Apps, end users, webhooks, API keys, members and invites are looked up only within the
signed-in member's tenant, so a foreign or unknown id is simply "not found"
(404, never 403).
"""

from __future__ import annotations

from typing import TypeVar

from pyramid.authorization import DENY_ALL, Allow, Authenticated
from pyramid.httpexceptions import HTTPNotFound

from saas.apikeys.models import ApiKey
from saas.apikeys.services import key_of_tenant
from saas.apps.models import App
from saas.apps.services import app_of_tenant
from saas.security import Permission
from saas.tenants.invites import invite_of_tenant
from saas.tenants.members import member_of_tenant
from saas.tenants.models import Invite, Member, Role
from saas.users.models import EndUser
from saas.users.services import user_of_app
from saas.webhooks.endpoints import endpoint_of_app
from saas.webhooks.models import WebhookEndpoint

T = TypeVar("T")

# Owners only: changing members' roles and removing members.
MANAGE_MEMBERS = "manage_members"


def _tenant_acl(tenant_id) -> list:
    return [
        (Allow, f"tenant:{tenant_id}", Permission.VIEW),
        (Allow, f"tenant:{tenant_id}:{Role.OWNER.value}", (Permission.MANAGE, MANAGE_MEMBERS)),
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


class UserContext(AppContext):
    def __init__(self, request, app: App, user: EndUser) -> None:
        super().__init__(request, app)
        self.user = user


class WebhookContext(AppContext):
    def __init__(self, request, app: App, endpoint: WebhookEndpoint) -> None:
        super().__init__(request, app)
        self.endpoint = endpoint


class ApiKeyContext(TenantContext):
    def __init__(self, request, key: ApiKey) -> None:
        super().__init__(request)
        self.key = key


class MemberContext(TenantContext):
    def __init__(self, request, target: Member) -> None:
        super().__init__(request)
        self.target = target


class InviteContext(TenantContext):
    def __init__(self, request, invite: Invite) -> None:
        super().__init__(request)
        self.invite = invite


def _found(value: T | None) -> T:
    """The looked-up object, or 404: unknown and foreign ids look the same."""
    if value is None:
        raise HTTPNotFound()
    return value


def app_context(request) -> AppContext | TenantContext:
    member = request.member
    if member is None:
        # Anonymous: the view's permission check sends them to sign in.
        return TenantContext(request)
    app = app_of_tenant(request.db, member.tenant_id, request.matchdict["app_id"])
    return AppContext(request, _found(app))


def user_context(request) -> UserContext | TenantContext:
    context = app_context(request)
    if not isinstance(context, AppContext):
        return context
    user = user_of_app(request.db, context.app, request.matchdict["user_id"])
    return UserContext(request, context.app, _found(user))


def webhook_context(request) -> WebhookContext | TenantContext:
    context = app_context(request)
    if not isinstance(context, AppContext):
        return context
    endpoint = endpoint_of_app(request.db, context.app, request.matchdict["webhook_id"])
    return WebhookContext(request, context.app, _found(endpoint))


def api_key_context(request) -> ApiKeyContext | TenantContext:
    member = request.member
    if member is None:
        return TenantContext(request)
    key = key_of_tenant(request.db, member.tenant_id, request.matchdict["key_id"])
    return ApiKeyContext(request, _found(key))


def member_context(request) -> MemberContext | TenantContext:
    member = request.member
    if member is None:
        return TenantContext(request)
    target = member_of_tenant(request.db, member.tenant_id, request.matchdict["member_id"])
    return MemberContext(request, _found(target))


def invite_context(request) -> InviteContext | TenantContext:
    member = request.member
    if member is None:
        return TenantContext(request)
    invite = invite_of_tenant(request.db, member.tenant_id, request.matchdict["invite_id"])
    return InviteContext(request, _found(invite))

