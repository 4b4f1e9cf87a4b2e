"""Shared set-up of the management API tests (no tests here).

``make_tenant``: a tenant with an API key, an app ready for logins, one end
user and a webhook endpoint with one pending delivery; ``Api`` calls
``/v1/manage`` with a tenant's key. Each test module makes its own small
fixtures from these.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from saas.apikeys.services import create_api_key
from saas.apps.models import App
from saas.users.models import EndUser, end_user_id
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT
from tests.functional.test_webhooks_support import add_delivery, add_webhook

ENDPOINT = "https://tenant.example.com/auth"


def add_user(db, app: App, external_id: str, **fields: Any) -> EndUser:
    """An end user as the sync workers would have written them."""
    fields.setdefault("custom", {"plan": "pro"})
    fields.setdefault("profile", {"name": external_id.title()})
    fields.setdefault("last_login_at", dt.datetime.now(dt.UTC))
    user = EndUser(id=end_user_id(app.id, external_id), app_id=app.id, external_id=external_id,
                   **fields)
    db.add(user)
    db.flush()
    return user


class Api:
    """``/v1/manage`` calls with one tenant's key (WebTest checks the status)."""

    def __init__(self, webapp, key: str | None) -> None:
        self.webapp = webapp
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, body: Any = None, status: int | str = "*",
             **params: Any):
        url = path if path.startswith("/") else "/v1/manage/" + path
        if method == "GET":
            return self.webapp.get(url, params=params, headers=self.headers, status=status)
        if method == "DELETE":
            return self.webapp.delete(url, headers=self.headers, status=status)
        if body is None:
            return getattr(self.webapp, method.lower())(url, headers=self.headers, status=status)
        call = getattr(self.webapp, method.lower() + "_json")
        return call(url, body, headers=self.headers, status=status)

    def get(self, path: str, status: int | str = 200, **params: Any):
        return self.call("GET", path, status=status, **params)

    def post(self, path: str, body: Any = None, status: int | str = 200):
        return self.call("POST", path, body, status=status)

    def patch(self, path: str, body: Any, status: int | str = 200):
        return self.call("PATCH", path, body, status=status)

    def delete(self, path: str, status: int | str = 204):
        return self.call("DELETE", path, status=status)


@dataclass
class Tenant:
    tenant_id: Any
    key: str
    key_prefix: str
    app: App
    secrets: dict[str, str]
    user: EndUser
    webhook_id: Any = None  # an endpoint of the app, with one pending delivery
    delivery_id: Any = None

    @property
    def app_path(self) -> str:
        return f"apps/{self.app.app_id}"

    @property
    def user_path(self) -> str:
        return f"apps/{self.app.app_id}/users/{self.user.id}"


def make_tenant(db, passwords, secret_box, name: str = "Acme") -> Tenant:
    member = make_member(db, passwords, tenant_name=name)
    key, plaintext = create_api_key(db, member.tenant_id, "automation",
                                    created_by_id=member.id)
    app, secrets = make_app(db, secret_box, member.tenant_id, name=f"{name} app",
                            custom_auth_endpoint=ENDPOINT, redirect_uris=[CLIENT_REDIRECT])
    user = add_user(db, app, "user-1")
    webhook, _secret = add_webhook(db, secret_box, app)
    delivery = add_delivery(db, webhook)
    db.commit()  # to the savepoint; the web requests share the connection
    return Tenant(member.tenant_id, plaintext, key.prefix, app, secrets, user, webhook.id,
                  delivery.id)


PROBES = ("/healthz", "/readyz", "/metrics")


def served_operations(config) -> set[tuple[str, str]]:
    """Every (path, method) served under ``/v1/`` and by the probes, read from
    Pyramid's route mapper and the views registered for each route."""
    patterns = {route.name: re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.pattern)
                for route in config.get_routes_mapper().get_routes()}
    public = {name for name, path in patterns.items()
              if path.startswith("/v1/") or path in PROBES}
    operations: set[tuple[str, str]] = set()
    routes_with_views = set()
    for item in config.registry.introspector.get_category("views"):
        view = item["introspectable"]
        name = view["route_name"]
        if name not in public:
            continue
        methods = view["request_methods"]
        methods = (methods,) if isinstance(methods, str) else methods
        assert methods, f"a view of route {name} answers every method"
        routes_with_views.add(name)
        operations |= {(patterns[name], m.lower()) for m in methods if m != "HEAD"}
    assert routes_with_views == public, f"routes without views: {public - routes_with_views}"
    return operations
