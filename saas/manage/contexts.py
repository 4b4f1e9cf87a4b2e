"""Route factories of the management API: the key's tenant, resolved once.

Apps and end users are looked up only within the tenant of the presented API
key, so a foreign or unknown id is "not found" (404, never 403). Without a
live key nothing is looked up: the context's ACL refuses everyone and the
caller gets 401 (``saas.manage.auth``).
"""

from __future__ import annotations

from pyramid.authorization import DENY_ALL, Allow

from saas.apps.models import App, SecretKind
from saas.apps.services import app_of_tenant
from saas.manage.errors import not_found
from saas.security import ApiKeyIdentity, Permission
from saas.tenants.models import Role
from saas.users.models import EndUser
from saas.users.services import user_of_app
from saas.webhooks.endpoints import delivery_of_endpoint, endpoint_of_app
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint


class TenantScope:
    """The API key's tenant; the root of every management route."""

    def __init__(self, request) -> None:
        self.identity: ApiKeyIdentity | None = request.identity
        self.tenant_id = self.identity.tenant_id if self.identity else None

    @property
    def __acl__(self) -> list:
        if self.tenant_id is None:
            return [DENY_ALL]
        tenant = f"tenant:{self.tenant_id}"
        return [
            (Allow, tenant, Permission.VIEW),
            (Allow, f"{tenant}:{Role.OWNER.value}", Permission.MANAGE),
            (Allow, f"{tenant}:{Role.ADMIN.value}", Permission.MANAGE),
            DENY_ALL,
        ]


class AppScope(TenantScope):
    """One app of the key's tenant (``{app_id}``)."""

    app: App

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            app = app_of_tenant(request.db, self.tenant_id, request.matchdict["app_id"])
            if app is None:
                raise not_found("app")
            self.app = app


class SecretScope(AppScope):
    """One secret kind of an app (``{kind}``: custom_auth or custom_token)."""

    kind: SecretKind

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            try:
                self.kind = SecretKind(request.matchdict["kind"])
            except ValueError:
                raise not_found("secret kind") from None


class UserScope(AppScope):
    """One end user of an app (``{user_id}``, our UUID)."""

    user: EndUser

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            user = user_of_app(request.db, self.app, request.matchdict["user_id"])
            if user is None:
                raise not_found("user")
            self.user = user


class WebhookScope(AppScope):
    """One webhook endpoint of an app (``{webhook_id}``)."""

    endpoint: WebhookEndpoint

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            endpoint = endpoint_of_app(request.db, self.app, request.matchdict["webhook_id"])
            if endpoint is None:
                raise not_found("webhook")
            self.endpoint = endpoint


class DeliveryScope(WebhookScope):
    """One delivery of a webhook endpoint (``{delivery_id}``)."""

    delivery: WebhookDelivery

    def __init__(self, request) -> None:
        super().__init__(request)
        if self.tenant_id is not None:
            delivery = delivery_of_endpoint(request.db, self.endpoint,
                                            request.matchdict["delivery_id"])
            if delivery is None:
                raise not_found("delivery")
            self.delivery = delivery
