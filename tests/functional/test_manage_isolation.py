"""Management API: keys, tenant isolation and the audit trail, route by route.

The route tables below are checked against the routes Pyramid serves, so a
new management route cannot be added without joining these tests.
"""

from __future__ import annotations

import pytest
from pyramid import testing
from sqlalchemy import func, select, text

from saas.apikeys.models import ApiKey
from saas.audit.models import AuditEvent
from saas.db import utcnow
from saas.security import PathSecurityPolicy, Permission
from saas.tenancy.contexts import TenantContext
from tests.flows import Login
from tests.functional.test_manage_support import Api, Tenant, make_tenant, served_operations

# Routes that take ids: {app} and {user} are filled in per test.
ID_ROUTES = [
    ("GET", "apps/{app}", None),
    ("PATCH", "apps/{app}", {"name": "Taken over"}),
    ("DELETE", "apps/{app}", None),
    ("GET", "apps/{app}/secrets", None),
    ("POST", "apps/{app}/secrets/custom_auth/rotate", {"grace_seconds": 0}),
    ("POST", "apps/{app}/secrets/custom_token/revoke-previous", None),
    ("GET", "apps/{app}/users", None),
    ("GET", "apps/{app}/users/{user}", None),
    ("DELETE", "apps/{app}/users/{user}", None),
    ("POST", "apps/{app}/users/{user}/disable", None),
    ("POST", "apps/{app}/users/{user}/enable", None),
    ("POST", "apps/{app}/users/{user}/revoke-sessions", None),
    ("GET", "apps/{app}/audit", None),
    ("GET", "apps/{app}/audit.csv", None),
    ("GET", "apps/{app}/stats", None),
    ("GET", "apps/{app}/attempts/{attempt_id}", None),
    ("GET", "apps/{app}/webhooks", None),
    ("POST", "apps/{app}/webhooks", {"url": "https://hooks.example.com/x",
                                     "events": ["user.created"]}),
    ("GET", "apps/{app}/webhooks/{hook}", None),
    ("PATCH", "apps/{app}/webhooks/{hook}", {"enabled": False}),
    ("DELETE", "apps/{app}/webhooks/{hook}", None),
    ("GET", "apps/{app}/webhooks/{hook}/secret", None),
    ("POST", "apps/{app}/webhooks/{hook}/secret/rotate", None),
    ("POST", "apps/{app}/webhooks/{hook}/test", None),
    ("GET", "apps/{app}/webhooks/{hook}/deliveries", None),
    ("POST", "apps/{app}/webhooks/{hook}/deliveries/{delivery}/resend", None),
]
TENANT_ROUTES = [("GET", "apps", None), ("POST", "apps", {"name": "New app"})]

# Every change, in an order that leaves something to change: the event each writes.
AUDIT_WALK = [
    ("POST", "apps", {"name": "Walked"}, "app.created"),
    ("PATCH", "apps/{app}", {"name": "Renamed", "backchannel": True}, "app.updated"),
    ("GET", "apps/{app}/secrets", None, "secret.revealed"),
    ("POST", "apps/{app}/secrets/custom_auth/rotate", None, "secret.rotated"),
    ("POST", "apps/{app}/secrets/custom_auth/revoke-previous", None, "secret.revoked"),
    ("POST", "apps/{app}/users/{user}/disable", None, "user.disabled"),
    ("POST", "apps/{app}/users/{user}/enable", None, "user.enabled"),
    ("POST", "apps/{app}/users/{user}/revoke-sessions", None, "session.revoked"),
    ("DELETE", "apps/{app}/users/{user}", None, "user.deleted"),
    ("POST", "apps/{app}/webhooks", {"url": "https://hooks.example.com/y",
                                     "events": ["login.failed"]}, "webhook.created"),
    # A loopback port nobody serves: the test event below is refused at once.
    ("PATCH", "apps/{app}/webhooks/{hook}", {"events": ["user.created"],
                                             "url": "http://127.0.0.1:9/hook"},
     "webhook.updated"),
    ("GET", "apps/{app}/webhooks/{hook}/secret", None, "webhook.secret_revealed"),
    ("POST", "apps/{app}/webhooks/{hook}/secret/rotate", None, "webhook.secret_rotated"),
    ("POST", "apps/{app}/webhooks/{hook}/test", None, "webhook.tested"),
    ("POST", "apps/{app}/webhooks/{hook}/deliveries/{delivery}/resend", None,
     "webhook.resent"),
    ("DELETE", "apps/{app}/webhooks/{hook}", None, "webhook.deleted"),
    ("DELETE", "apps/{app}", None, "app.deleted"),
]


@pytest.fixture
def tenant(db, passwords, secret_box) -> Tenant:
    return make_tenant(db, passwords, secret_box, "Acme")


@pytest.fixture
def other_tenant(db, passwords, secret_box) -> Tenant:
    return make_tenant(db, passwords, secret_box, "Globex")


def pattern(template: str) -> str:
    path = "/v1/manage/" + template.replace("{app}", "{app_id}").replace("{user}", "{user_id}")
    path = path.replace("{hook}", "{webhook_id}").replace("{delivery}", "{delivery_id}")
    return path.replace("custom_auth", "{kind}").replace("custom_token", "{kind}")


def fill(template: str, app_id: str, user_id, tenant: Tenant | None = None) -> str:
    """The path with ids; ``tenant`` gives the webhook and delivery ids."""
    path = template.replace("{app}", app_id).replace("{user}", str(user_id))
    if tenant is not None:
        path = path.replace("{hook}", str(tenant.webhook_id))
        path = path.replace("{delivery}", str(tenant.delivery_id))
    return path


def call(api: Api, method: str, path: str, body, status):
    return api.call(method, path, body, status=status)


def test_the_tables_cover_every_management_route(pyramid_config):
    served = {op for op in served_operations(pyramid_config) if op[0].startswith("/v1/manage/")}
    tables = {(pattern(t), m.lower()) for m, t, _ in ID_ROUTES + TENANT_ROUTES}
    assert tables == served
    changes = {op for op in served if op[1] != "get"}
    assert changes <= {(pattern(t), m.lower()) for m, t, _, _ in AUDIT_WALK}


def snapshot(db, registry, tenant: Tenant, tokens: dict, webapp) -> dict:
    """Everything of tenant A that a call could change, in PostgreSQL and Redis."""
    db.expire_all()
    app_uuid, app_id = tenant.app.id, tenant.app.app_id
    rows = {}
    for table, column, value in (("apps", "tenant_id", tenant.tenant_id),
                                 ("app_secrets", "app_id", app_uuid),
                                 ("signing_keys", "app_id", app_uuid),
                                 ("end_users", "app_id", app_uuid),
                                 ("webhook_endpoints", "app_id", app_uuid),
                                 ("webhook_events", "app_id", app_uuid),
                                 ("webhook_deliveries", "endpoint_id", tenant.webhook_id)):
        rows[table] = db.execute(text(f"SELECT * FROM {table} WHERE {column} = :v "  # noqa: S608
                                      "ORDER BY 1"), {"v": value}).all()
    rows["audit_events"] = db.scalar(select(func.count()).select_from(AuditEvent))
    client, keys = registry["saas.redis"], registry["saas.redis_keys"]
    rows["cache"] = client.get(keys.app(app_id, "config"))
    rows["disabled"] = client.exists(keys.app(app_id, "user-disabled", str(tenant.user.id)))
    rows["me"] = webapp.get(f"/v1/apps/{app_id}/me", status="*", headers={
        "Authorization": "Bearer " + tokens["access_token"]}).status_int
    return rows


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES,
                         ids=[f"{m} {t}" for m, t, _ in ID_ROUTES])
def test_another_tenants_ids_are_not_found_and_nothing_changes(
        webapp, db, registry, tenant, other_tenant, method, template, body):
    tokens = Login(webapp, tenant.app.app_id, tenant.secrets["custom_auth"]).tokens(
        user_id="user-1")  # a live session of A's user, and A's app in the cache
    before = snapshot(db, registry, tenant, tokens, webapp)
    assert before["me"] == 200 and before["cache"]
    intruder = Api(webapp, other_tenant.key)
    targets = [fill(template, tenant.app.app_id, tenant.user.id, tenant)]
    if "{user}" in template or "{hook}" in template:  # B's own app, A's user or webhook
        targets.append(fill(template, other_tenant.app.app_id, tenant.user.id, tenant))
    for path in targets:
        error = call(intruder, method, path, body, 404).json
        assert error["error"] == "not_found" and error["reason"] == "not_found"
    assert snapshot(db, registry, tenant, tokens, webapp) == before
    assert tenant.app.app_id not in {a["app_id"] for a in intruder.get("apps").json["apps"]}


def test_every_route_needs_a_live_key(webapp, db, registry, tenant):
    tokens = Login(webapp, tenant.app.app_id, tenant.secrets["custom_auth"]).tokens(
        user_id="user-1")
    before = snapshot(db, registry, tenant, tokens, webapp)
    key = db.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.tenant_id))
    live_key = tenant.key
    key.revoked_at = utcnow()
    db.commit()
    credentials = {"none": {}, "unknown": {"Authorization": "Bearer bk_" + "x" * 43},
                   "revoked": {"Authorization": f"Bearer {live_key}"},
                   "other scheme": {"Authorization": f"Basic {live_key}"}}
    for method, template, body in ID_ROUTES + TENANT_ROUTES:
        path = fill(template, tenant.app.app_id, tenant.user.id, tenant)
        for name, headers in credentials.items():
            api = Api(webapp, None)
            api.headers = headers
            response = call(api, method, path, body, 401)
            assert response.json["error"] == "invalid_token", (method, path, name)
            assert response.json["reason"] == "invalid_api_key"
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer realm=")
            assert ('error="invalid_token"' in challenge) == (name in ("unknown", "revoked"))
    assert snapshot(db, registry, tenant, tokens, webapp) == before


def test_a_valid_key_refreshes_its_last_use(webapp, db, tenant):
    Api(webapp, tenant.key).get("apps")
    db.expire_all()
    key = db.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant.tenant_id))
    assert key.last_used_at is not None


def test_dashboard_sessions_count_for_nothing_under_v1_manage():
    member = testing.DummyResource(id="m1", tenant_id="t1", role=testing.DummyResource(
        value="owner"))
    policy = PathSecurityPolicy()
    for path, expected in (("/v1/manage/apps", None), ("/v1/manage", None),
                           ("/dashboard/apps", member), ("/v1/managed", member)):
        request = testing.DummyRequest(path=path, member=member, api_key=None)
        assert policy.identity(request) is expected
    request = testing.DummyRequest(path="/v1/manage/apps", member=member, api_key=None)
    scope = TenantContext.__new__(TenantContext)
    scope.identity, scope.tenant_id = None, "t1"
    assert not policy.permits(request, scope, Permission.VIEW)


def test_each_change_writes_exactly_its_audit_event(webapp, db, tenant):
    api = Api(webapp, tenant.key)
    app_id, user_id = tenant.app.app_id, tenant.user.id
    for method, template, body, expected in AUDIT_WALK:
        db.expire_all()
        seen = set(db.scalars(select(AuditEvent.id)))
        response = call(api, method, fill(template, app_id, user_id, tenant), body, "2*")
        db.expire_all()
        new = list(db.scalars(select(AuditEvent).where(AuditEvent.id.not_in(seen))))
        assert [event.type for event in new] == [expected], (method, template)
        (event,) = new
        assert event.tenant_id == tenant.tenant_id and event.outcome.value == "success"
        assert event.app_id == (response.json["app_id"] if expected == "app.created"
                                else app_id)
        assert event.details["via"] == "api"
        assert event.details["api_key_prefix"] == tenant.key_prefix
        assert tenant.key not in str(event.details)
        if expected.startswith(("user.", "session.")):
            assert event.user_id == user_id and event.external_id == "user-1"
