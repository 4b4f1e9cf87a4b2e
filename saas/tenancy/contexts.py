"""Route contexts of both doors: the caller's tenant, resolved once, with one ACL.

The tenant comes from ``request.identity``: the member of a dashboard session,
or the API key under ``/v1/manage`` (``saas.security``). Apps, end users,
webhooks, API keys, members and invites are looked up only within that
tenant, so a foreign or unknown id is :class:`TenantNotFound` (404, never
403); each door renders it in its own shape. Without an identity nothing is
looked up and the ACL refuses everyone: the dashboard sends the caller to
sign in, the management API answers 401.
"""

from __future__ import annotations

from typing import TypeVar

from pyramid.authorization import DENY_ALL, Allow
from pyramid.httpexceptions import HTTPNotFound

from saas.apikeys.models import ApiKey
from saas.apikeys.services import key_of_tenant
from saas.apps.models import CLIENT_SECRET_KIND, App, SecretKind
from saas.apps.services import app_of_tenant, confidential_secret
from saas.security import Permission
from saas.tenants.invites import invite_of_tenant
from saas.tenants.members import member_of_tenant
from saas.tenants.models import Invite, Member, Role
from saas.users.models import EndUser
from saas.users.services import user_of_app
from saas.webhooks.endpoints import delivery_of_endpoint, endpoint_of_app
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint

T = TypeVar("T")


class TenantNotFound(HTTPNotFound):
    """An id of the URL that is unknown or another tenant's (``what``: "app", "user"…).

    The dashboard shows its 404 page; the management API answers its JSON
    ``not_found`` naming ``what`` (``saas.manage.auth``).
    """

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what


def tenant_acl(tenant_id) -> list:
    """Viewers view; admins (and API keys) manage; owners also manage members."""
    tenant = f"tenant:{tenant_id}"
    return [
        (Allow, tenant, Permission.VIEW),
        (Allow, f"{tenant}:{Role.OWNER.value}",
         (Permission.MANAGE, Permission.MANAGE_MEMBERS)),
        (Allow, f"{tenant}:{Role.ADMIN.value}", Permission.MANAGE),
        DENY_ALL,
    ]


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise TenantNotFound(what)
    return value


class TenantContext:
    """The caller's tenant; the root of every dashboard and management route."""

    def __init__(self, request) -> None:
        self.identity = request.identity
        self.tenant_id = self.identity.tenant_id if self.identity is not None else None

    @property
    def __acl__(self) -> list:
        if self.tenant_id is None:
            return [DENY_ALL]
        return tenant_acl(self.tenant_id)


class AppContext(TenantContext):
    """One app of the tenant (``{app_id}``)."""

    app: App

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.app = _found(app_of_tenant(request.db, self.tenant_id,
                                            request.matchdict["app_id"]), "app")


class SecretContext(AppContext):
    """One secret of an app (``{kind}``): custom_auth or custom_token, or
    client_secret, which only a confidential client has (else not found)."""

    kind: SecretKind | str

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            kind = request.matchdict["kind"]
            if kind == CLIENT_SECRET_KIND:
                self.kind = _found(kind if confidential_secret(self.app) else None,
                                   "client secret (the app is a public client)")
                return
            try:
                self.kind = SecretKind(kind)
            except ValueError:
                raise TenantNotFound("secret kind") from None


class UserContext(AppContext):
    """One end user of an app (``{user_id}``, our UUID)."""

    user: EndUser

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.user = _found(user_of_app(request.db, self.app,
                                           request.matchdict["user_id"]), "user")


class WebhookContext(AppContext):
    """One webhook endpoint of an app (``{webhook_id}``)."""

    endpoint: WebhookEndpoint

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.endpoint = _found(endpoint_of_app(request.db, self.app,
                                                   request.matchdict["webhook_id"]), "webhook")


class DeliveryContext(WebhookContext):
    """One delivery of a webhook endpoint (``{delivery_id}``)."""

    delivery: WebhookDelivery

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.delivery = _found(delivery_of_endpoint(
                request.db, self.endpoint, request.matchdict["delivery_id"]), "delivery")


class ApiKeyContext(TenantContext):
    """One API key of the tenant (``{key_id}``)."""

    key: ApiKey

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.key = _found(key_of_tenant(request.db, self.tenant_id,
                                            request.matchdict["key_id"]), "API key")


class MemberContext(TenantContext):
    """One member of the tenant (``{member_id}``)."""

    target: Member

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.target = _found(member_of_tenant(request.db, self.tenant_id,
                                                  request.matchdict["member_id"]), "member")


class InviteContext(TenantContext):
    """One pending invitation of the tenant (``{invite_id}``)."""

    invite: Invite

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            self.invite = _found(invite_of_tenant(request.db, self.tenant_id,
                                                  request.matchdict["invite_id"]), "invite")
