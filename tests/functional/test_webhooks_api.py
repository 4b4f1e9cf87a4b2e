"""``/v1/manage/apps/{app_id}/webhooks``: create, list, read, update, delete, the
secret, deliveries and resend — and the events user actions stage. Every
answer is checked against the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from saas.db import utcnow
from saas.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.functional.test_manage_openapi import Checker
from tests.functional.test_webhooks_support import add_delivery

HOOKS = "/v1/manage/apps/{app_id}/webhooks"
HOOK = HOOKS + "/{webhook_id}"




@pytest.fixture
def check() -> Checker:
    return Checker()


def test_create_read_update_delete(api, tenant, check, db, secret_box):
    path = f"{tenant.app_path}/webhooks"
    created = check(HOOKS, "post", api.post(path, {
        "url": "https://receiver.example.com/bk", "events": ["login.failed", "user.created"]},
        status=201), exact_keys=True).json
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["user.created", "login.failed"]  # documented order
    assert created["enabled"] is True and created["disabled_reason"] is None
    hook = f"{path}/{created['id']}"
    stored = db.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert secret_box.decrypt(stored.secret_ciphertext) == created["secret"]
    assert created["secret"] not in stored.secret_ciphertext

    listed = check(HOOKS, "get", api.get(path), exact_keys=True).json["webhooks"]
    assert [w["id"] for w in listed] == [str(tenant.webhook_id), created["id"]]
    assert "secret" not in listed[1]
    read = check(HOOK, "get", api.get(hook), exact_keys=True).json
    assert read == {k: v for k, v in created.items() if k != "secret"}

    changed = check(HOOK, "patch", api.patch(hook, {"enabled": False, "events": [
        "session.revoked"]})).json
    assert changed["enabled"] is False and changed["events"] == ["session.revoked"]
    revealed = check(HOOK + "/secret", "get", api.get(hook + "/secret"), exact_keys=True).json
    assert revealed == {"secret": created["secret"], "previous_valid_until": None}
    rotate = HOOK + "/secret/rotate"
    rotated = check(rotate, "post", api.post(hook + "/secret/rotate"), exact_keys=True).json
    assert rotated["secret"] != created["secret"]
    grace = dt.datetime.fromisoformat(rotated["previous_valid_until"]) - utcnow()
    assert dt.timedelta(hours=23, minutes=59) < grace <= dt.timedelta(hours=24)
    assert api.get(hook + "/secret").json == rotated
    stored = db.get(WebhookEndpoint, uuid.UUID(created["id"]))
    db.refresh(stored)
    assert secret_box.decrypt(stored.previous_secret_ciphertext) == created["secret"]
    at_once = check(rotate, "post", api.post(hook + "/secret/rotate", {"grace_seconds": 0}))
    assert at_once.json["previous_valid_until"] is None
    for body, reason in (({"grace_seconds": -1}, "invalid_value"),
                         ({"grace_seconds": "1"}, "invalid_value"),
                         ({"grace": 1}, "unknown_fields")):
        refused = check(rotate, "post", api.post(hook + "/secret/rotate", body, status=422))
        assert refused.json["reason"] == reason
    check(HOOK, "delete", api.delete(hook))
    check(HOOK, "get", api.get(hook, status=404))


@pytest.mark.parametrize(("body", "status", "reason", "says"), [
    ({"url": "https://x.example.com/"}, 422, "invalid_value", "events is required"),
    ({"events": ["user.created"]}, 422, "invalid_value", "url is required"),
    ({"url": "https://x.example.com/", "events": []}, 422, "invalid_value", "non-empty"),
    ({"url": "https://x.example.com/", "events": ["user.exploded"]}, 422, "invalid_value",
     "Unknown event types: user.exploded"),
    ({"url": "ftp://x.example.com/", "events": ["user.created"]}, 422, "invalid_value",
     "http or https"),
    ({"url": "https://x.example.com/", "events": ["user.created"], "enabled": "yes"}, 422,
     "invalid_value", "true or false"),
    ({"url": "https://x.example.com/", "events": ["user.created"], "secret": "mine"}, 422,
     "unknown_fields", "secret"),
])
def test_refused_bodies_say_why(api, tenant, check, body, status, reason, says):
    answer = check(HOOKS, "post", api.post(f"{tenant.app_path}/webhooks", body,
                                           status=status)).json
    assert answer["reason"] == reason and says in answer["error_description"]


def test_a_bad_json_body_is_400(webapp, api, tenant, check):
    check(HOOKS, "post", webapp.post(f"/v1/manage/{tenant.app_path}/webhooks", b"[]", headers={
        **api.headers, "Content-Type": "application/json"}, status=400))


def test_at_most_ten_endpoints_per_app(api, tenant):
    path = f"{tenant.app_path}/webhooks"
    for n in range(9):  # the tenant has one already
        api.post(path, {"url": f"https://r{n}.example.com/", "events": ["user.created"]},
                 status=201)
    refused = api.post(path, {"url": "https://r.example.com/", "events": ["user.created"]},
                       status=422).json
    assert "at most 10" in refused["error_description"]


def test_deliveries_page_and_resend(api, tenant, check, db):
    endpoint = db.get(WebhookEndpoint, tenant.webhook_id)
    for _ in range(2):
        add_delivery(db, endpoint, status=DeliveryStatus.FAILED, next_attempt_at=None)
    db.commit()
    path = f"{tenant.app_path}/webhooks/{tenant.webhook_id}/deliveries"
    first = check(HOOK + "/deliveries", "get", api.get(path, limit=2), exact_keys=True).json
    assert len(first["deliveries"]) == 2 and first["next_cursor"]
    second = api.get(path, limit=2, cursor=first["next_cursor"]).json
    assert [d["id"] for d in second["deliveries"]] == [str(tenant.delivery_id)]
    assert second["next_cursor"] is None
    check(HOOK + "/deliveries", "get", api.get(path, cursor="bogus", status=400))
    failed = first["deliveries"][0]
    assert failed["status"] == "failed" and failed["next_attempt_at"] is None
    resend = HOOK + "/deliveries/{delivery_id}/resend"
    again = check(resend, "post", api.post(f"{path}/{failed['id']}/resend", status=202),
                  exact_keys=True).json
    assert again["status"] == "pending" and again["event"] == failed["event"]
    assert again["next_attempt_at"] is not None
    check(resend, "post", api.post(f"{path}/{tenant.user.id}/resend", status=404))


@pytest.mark.parametrize(("action", "event", "extra"), [
    ("disable", "user.disabled", {"sessions_revoked": 0}),
    ("revoke-sessions", "session.revoked", {"session_id": None, "cause": "revoked_by_tenant",
                                            "sessions_revoked": 0}),
    ("delete", "user.deleted", {"sessions_revoked": 0}),
])
def test_user_actions_stage_their_event(api, tenant, db, action, event, extra):
    path, user_id = tenant.user_path, str(tenant.user.id)
    if action == "delete":
        api.delete(path)
    else:
        api.post(f"{path}/{action}", status=204)
    db.expire_all()
    staged = db.scalars(select(WebhookEvent).where(WebhookEvent.type == event)).all()
    assert [e.data for e in staged] == [{"user_id": user_id,
                                         "external_id": "user-1", **extra}]
    (delivery,) = db.scalars(select(WebhookDelivery).where(
        WebhookDelivery.event_id == staged[0].id))
    assert delivery.endpoint_id == tenant.webhook_id


def test_enabling_the_user_again_stages_nothing(api, tenant, db):
    api.post(f"{tenant.user_path}/enable", status=204)
    db.expire_all()
    assert db.scalars(select(WebhookEvent).where(
        WebhookEvent.app_id == tenant.app.id, WebhookEvent.type != "user.created")).all() == []


def test_enabling_resumes_held_deliveries_with_a_fresh_window(api, tenant, db):
    hook = f"{tenant.app_path}/webhooks/{tenant.webhook_id}"
    api.patch(hook, {"enabled": False})
    long_ago = utcnow() - dt.timedelta(days=2)
    held = db.get(WebhookDelivery, tenant.delivery_id)
    held.retry_from, held.next_attempt_at = long_ago, long_ago + dt.timedelta(hours=6)
    settled = add_delivery(db, db.get(WebhookEndpoint, tenant.webhook_id),
                           status=DeliveryStatus.DELIVERED, next_attempt_at=None,
                           retry_from=long_ago)
    db.commit()
    before = utcnow()
    assert api.patch(hook, {"enabled": True}).json["enabled"] is True
    db.expire_all()
    held = db.get(WebhookDelivery, tenant.delivery_id)
    assert held.retry_from >= before and held.next_attempt_at >= before
    assert db.get(WebhookDelivery, settled.id).retry_from == long_ago  # settled: untouched


def test_events_raised_while_disabled_are_held_then_sent(api, tenant, check, db):
    hook = f"{tenant.app_path}/webhooks/{tenant.webhook_id}"
    api.patch(hook, {"enabled": False})
    api.post(f"{tenant.user_path}/disable", status=204)
    db.expire_all()
    (event,) = db.scalars(select(WebhookEvent).where(WebhookEvent.type == "user.disabled"))
    (held,) = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id))
    assert held.endpoint_id == tenant.webhook_id and held.status == DeliveryStatus.PENDING
    path = f"{hook}/deliveries"
    listed = check(HOOK + "/deliveries", "get", api.get(path), exact_keys=True).json
    mine = next(d for d in listed["deliveries"] if d["id"] == str(held.id))
    assert mine["status"] == "pending" and mine["next_attempt_at"] is None  # held
    api.patch(hook, {"enabled": True})
    mine = next(d for d in api.get(path).json["deliveries"] if d["id"] == str(held.id))
    assert mine["next_attempt_at"] is not None and mine["event"]["id"] == str(event.id)


def test_a_test_event_is_a_signed_ping_posted_now(api, tenant, check, db, secret_box):
    """A real receiver on loopback gets the ping; its signature verifies with the
    endpoint's secret; the answer reports what the receiver said."""
    from saas.audit.models import AuditEvent
    from saas.webhooks.verify import verify_webhook
    from tests.functional.test_webhooks_support import add_webhook, running_receiver
    from tests.live import free_port

    test = HOOK + "/test"
    with running_receiver() as receiver:
        endpoint, secret = add_webhook(db, secret_box, tenant.app, url=receiver.url,
                                       events=["user.deleted"])
        endpoint.enabled = False  # a receiver can be checked before enabling it
        db.commit()
        path = f"{tenant.app_path}/webhooks/{endpoint.id}/test"
        sent = check(test, "post", api.post(path), exact_keys=True).json
        (request,) = receiver.requests  # posted during the call, not queued
        event = verify_webhook(request.body, request.headers["Bridgekeeper-Signature"], secret)
        assert event["type"] == "ping" and event["id"] == sent["event_id"]
        assert event["data"] == {"webhook_id": str(endpoint.id)}
        assert event["app_id"] == tenant.app.app_id
        assert request.headers["Bridgekeeper-Event-Id"] == sent["event_id"]
        assert sent["ok"] is True and sent["status_code"] == 200 and sent["error"] is None
        assert sent["response_snippet"] == "answered 200 to request 1"

        receiver.answer = lambda request, n: 500
        refused = check(test, "post", api.post(path), exact_keys=True).json
        assert (refused["ok"], refused["status_code"], refused["error"]) == (
            False, 500, "HTTP 500")
        assert refused["event_id"] != sent["event_id"]  # each test is a new event
    endpoint.url = f"http://127.0.0.1:{free_port()}/gone"
    db.commit()
    gone = check(test, "post", api.post(path), exact_keys=True).json
    assert gone["ok"] is False and gone["status_code"] is None
    assert gone["error"].startswith("ConnectionRefusedError")
    db.expire_all()
    # Not an outbox event: no delivery, no effect on the endpoint's health.
    assert db.scalars(select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint.id)).all() == []
    assert db.get(WebhookEndpoint, endpoint.id).consecutive_failures == 0
    tested = db.scalars(select(AuditEvent).where(AuditEvent.type == "webhook.tested")
                        .order_by(AuditEvent.at)).all()
    assert [(e.details["ok"], e.details["status_code"]) for e in tested] == [
        (True, 200), (False, 500), (False, None)]
    check(test, "post", api.post(f"{tenant.app_path}/webhooks/{uuid.uuid4()}/test",
                                 status=404))
    check(test, "post", api.webapp.post("/v1/manage/" + path, status=401))
