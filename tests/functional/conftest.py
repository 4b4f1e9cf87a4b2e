"""Fixtures shared by the functional tests: an app ready for logins, and a
tenant with its management API client."""

from __future__ import annotations

import pytest

from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT
from tests.functional.test_manage_support import Api, Tenant, make_tenant


@pytest.fixture
def login_app(db, passwords, secret_box):
    """An app ready for logins; ``app.plain_secrets`` holds its secrets."""
    member = make_member(db, passwords)
    app, secrets = make_app(
        db, secret_box, member.tenant_id,
        custom_auth_endpoint="https://tenant.example.com/auth?v=1",
        redirect_uris=[CLIENT_REDIRECT, "myapp://cb", "http://127.0.0.1/loop"],
    )
    db.commit()  # to the savepoint; the web requests share the connection
    app.plain_secrets = secrets
    return app


@pytest.fixture
def tenant(db, passwords, secret_box) -> Tenant:
    """A tenant with an API key (management API tests)."""
    return make_tenant(db, passwords, secret_box, "Acme")


@pytest.fixture
def api(webapp, tenant) -> Api:
    """The management API, authenticated as ``tenant``."""
    return Api(webapp, tenant.key)
