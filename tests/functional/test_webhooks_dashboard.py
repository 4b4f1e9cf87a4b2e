"""The dashboard's webhook pages: add with reasons for refusals, edit, enable and
disable, secret reveal/rotate, delivery log with attempts and resend, delete;
CSRF on every form, viewers read only, other tenants see nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from saas.audit.models import AuditEvent
from saas.db import utcnow
from saas.tenants.models import Role
from saas.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import add_member, build_world, csrf_token, sign_in
from tests.functional.test_webhooks_support import add_delivery, add_webhook


@pytest.fixture
def world(db, passwords, secret_box):
    world = build_world(db, passwords, secret_box)
    endpoint, secret = add_webhook(db, secret_box, world.app, events=["user.created"])
    delivery = add_delivery(db, endpoint, status=DeliveryStatus.FAILED, next_attempt_at=None)
    db.add(WebhookAttempt(delivery_id=delivery.id, at=utcnow(), ok=False, status_code=500,
                          latency_ms=12, response_snippet="boom <b>", error="HTTP 500"))
    db.commit()
    world.extra.update(endpoint=endpoint, secret=secret, delivery=delivery)
    return world


@pytest.fixture
def owner(webapp, world):
    sign_in(webapp, world.owner.email)
    return world


def _list(world) -> str:
    return f"/dashboard/apps/{world.app.app_id}/webhooks"


def _hook(world, rest: str = "") -> str:
    return f"{_list(world)}/{world.extra['endpoint'].id}{rest}"


def _audit_types(db) -> list[str]:
    return list(db.scalars(select(AuditEvent.type).order_by(AuditEvent.at)))


def test_the_app_has_a_webhooks_tab_and_list(webapp, owner):
    page = webapp.get(f"/dashboard/apps/{owner.app.app_id}")
    tab = page.html.find("a", string="Webhooks")
    assert tab["href"].endswith(_list(owner))
    listing = webapp.get(_list(owner))
    rows = listing.html.select("#webhooks tbody tr")
    assert len(rows) == 1 and "hooks.example.com" in rows[0].text
    assert "user.created" in rows[0].text and "enabled" in rows[0].text


def test_adding_a_webhook_shows_its_secret_once(webapp, db, owner):
    page = webapp.get(_list(owner))
    form = next(f for f in page.forms.values() if f.action.endswith(_list(owner)))
    form["url"] = "https://receiver.example.com/bk"
    form.set("events", False, index=0)  # untick user.created, keep the others
    page = form.submit(status=200)
    secret = page.html.find(id="new-secret").text
    assert secret.startswith("whsec_")
    assert page.headers["Cache-Control"] == "no-store"
    db.expire_all()
    added = db.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.url == "https://receiver.example.com/bk"))
    assert added.events == ["user.updated", "login.succeeded", "login.failed",
                            "user.disabled", "user.deleted", "session.revoked"]
    assert secret not in added.secret_ciphertext  # encrypted at rest
    assert "webhook.created" in _audit_types(db)
    assert secret not in webapp.get(_list(owner)).text  # shown once, not on the list


@pytest.mark.parametrize(("url", "events", "reason"), [
    ("", ["user.created"], "url is required"),
    ("ftp://x.example.com/", ["user.created"], "must use http or https"),
    ("https://user:pw@x.example.com/", ["user.created"], "user name or password"),
    ("https://x.example.com/", [], "Choose at least one event"),
    ("https://x.example.com/", ["user.exploded"], "Choose at least one event"),
])
def test_refused_webhooks_say_why(webapp, db, owner, url, events, reason):
    before = db.scalar(select(func.count()).select_from(WebhookEndpoint))
    page = webapp.post(_list(owner), {"csrf_token": csrf_token(webapp), "url": url,
                                      "events": events}, status=400)
    assert reason in page.html.find(id="form-error").text
    assert page.html.find(id="url")["value"] == url  # the form keeps what was typed
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(WebhookEndpoint)) == before


def test_production_refuses_private_receivers(webapp, owner, registry, monkeypatch):
    monkeypatch.setitem(registry.settings, "saas.backchannel.allow_private", False)
    page = webapp.post(_list(owner), {"csrf_token": csrf_token(webapp),
                                      "url": "https://127.0.0.1/hook",
                                      "events": ["user.created"]}, status=400)
    assert "not a public internet address" in page.text


def test_editing_enabling_and_disabling(webapp, db, owner):
    page = webapp.get(_hook(owner))
    form = next(f for f in page.forms.values() if f.action.endswith(_hook(owner)))
    form["url"] = "https://moved.example.com/bk"
    form.set("events", True, index=3)  # login.failed too
    form.submit(status=303).follow()
    endpoint = owner.extra["endpoint"]
    db.refresh(endpoint)
    assert endpoint.url == "https://moved.example.com/bk"
    assert endpoint.events == ["user.created", "login.failed"]
    token = csrf_token(webapp)
    done = webapp.post(_hook(owner, "/disable"), {"csrf_token": token}, status=303).follow()
    assert "Webhook disabled" in done.text and done.html.find(id="webhook-status").text == \
        "disabled"
    endpoint.disabled_reason = "Disabled automatically: 12 attempts in a row failed over 24 h."
    db.commit()
    notice = webapp.get(_hook(owner)).html.find(id="disabled-notice").text
    assert "12 attempts in a row" in notice
    assert "deliveries kept failing" in webapp.get(_list(owner)).html.find(
        id="disabled-notice").text
    webapp.post(_hook(owner, "/enable"), {"csrf_token": token}, status=303)
    db.refresh(endpoint)
    assert endpoint.enabled and endpoint.disabled_reason is None
    assert _audit_types(db).count("webhook.updated") == 3


def test_the_secret_needs_the_password_to_reveal_or_rotate(webapp, db, owner):
    token = csrf_token(webapp)
    shown = webapp.post(_hook(owner, "/secret/reveal"),
                        {"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert shown.html.find(id="webhook-secret").text == owner.extra["secret"]
    assert shown.headers["Cache-Control"] == "no-store"
    rotated = webapp.post(_hook(owner, "/secret/rotate"),
                          {"csrf_token": token, "password": DEFAULT_PASSWORD})
    new = rotated.html.find(id="new-secret").text
    assert new.startswith("whsec_") and new != owner.extra["secret"]
    assert "also signs until" in rotated.html.find(id="previous-secret").text
    assert "second" in rotated.html.find(id="new-secret-heading").parent.text
    again = webapp.post(_hook(owner, "/secret/reveal"),
                        {"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert again.html.find(id="webhook-secret").text == new
    assert {"webhook.secret_revealed", "webhook.secret_rotated"} <= set(_audit_types(db))
    # Last: a wrong password makes the next try wait (docs/security.md).
    wrong = webapp.post(_hook(owner, "/secret/reveal"),
                        {"csrf_token": token, "password": "nope"}, status=401)
    assert "That password is not right." in wrong.text
    assert new not in wrong.text


def test_the_delivery_log_shows_attempts_and_resends(webapp, db, owner):
    page = webapp.get(_hook(owner))
    delivery = owner.extra["delivery"]
    row = page.html.find(id=f"delivery-{delivery.id}")
    assert "user.created" in row.text and str(delivery.event_id) in row.text
    assert "gave up" in row.text and "HTTP 500" in row.text and "12 ms" in row.text
    assert "boom <b>" in row.find("pre").text  # escaped, shown as text
    form = next(f for f in page.forms.values() if f.action.endswith("/resend"))
    done = form.submit(status=303).follow()
    assert "queued again with the same event id" in done.text
    db.refresh(delivery)
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None
    assert "webhook.resent" in _audit_types(db)


def test_the_log_says_a_disabled_webhooks_deliveries_are_held(webapp, db, owner):
    endpoint = owner.extra["endpoint"]
    pending = add_delivery(db, endpoint)
    db.commit()
    row = webapp.get(_hook(owner)).html.find(id=f"delivery-{pending.id}")
    assert "pending" in row.text and "next " in row.text and "held" not in row.text
    webapp.post(_hook(owner, "/disable"), {"csrf_token": csrf_token(webapp)}, status=303)
    row = webapp.get(_hook(owner)).html.find(id=f"delivery-{pending.id}")
    assert "held until the webhook is enabled" in row.text and "next " not in row.text


def test_send_test_event_posts_a_signed_ping_and_says_how_it_went(webapp, db, owner):
    from saas.webhooks.verify import verify_webhook
    from tests.functional.test_webhooks_support import running_receiver

    endpoint = owner.extra["endpoint"]
    with running_receiver() as receiver:
        endpoint.url = receiver.url
        db.commit()
        page = webapp.get(_hook(owner))
        form = next(f for f in page.forms.values() if f.action.endswith("/test"))
        assert page.html.find(id="send-test").text == "Send test event"
        assert receiver.requests == []
        done = form.submit(status=303).follow()
        (request,) = receiver.requests
        event = verify_webhook(request.body, request.headers["Bridgekeeper-Signature"],
                               owner.extra["secret"])
        assert event["type"] == "ping" and event["data"] == {"webhook_id": str(endpoint.id)}
        assert "Test event sent: the receiver answered HTTP 200 in" in done.text
        receiver.answer = lambda request, n: 401
        refused = form.submit(status=303).follow()
        assert "Test event not accepted after" in refused.text and "HTTP 401" in refused.text
    assert _audit_types(db).count("webhook.tested") == 2


def test_overdue_deliveries_say_no_worker_seems_to_run(webapp, db, owner):
    import datetime as dt

    endpoint = owner.extra["endpoint"]
    fresh = add_delivery(db, endpoint)
    db.commit()
    assert webapp.get(_hook(owner)).html.find(id="overdue-notice") is None
    fresh.next_attempt_at = utcnow() - dt.timedelta(minutes=5)
    db.commit()
    notice = webapp.get(_hook(owner)).html.find(id="overdue-notice").text
    assert "no delivery worker seems to be running" in notice
    webapp.post(_hook(owner, "/disable"), {"csrf_token": csrf_token(webapp)}, status=303)
    assert webapp.get(_hook(owner)).html.find(id="overdue-notice") is None  # held, not late


def test_the_delivery_log_pages(webapp, db, owner):
    endpoint = owner.extra["endpoint"]
    for _ in range(21):
        add_delivery(db, endpoint)
    db.commit()
    first = webapp.get(_hook(owner))
    assert len(first.html.select("#deliveries tbody tr")) == 20
    second = first.click(linkid="next-page")
    assert len(second.html.select("#deliveries tbody tr")) == 2
    webapp.get(_hook(owner), {"cursor": "made-up"}, status=400)


def test_deleting_needs_the_confirmation(webapp, db, owner):
    endpoint_id = owner.extra["endpoint"].id
    token = csrf_token(webapp)
    refused = webapp.post(_hook(owner, "/delete"), {"csrf_token": token}, status=400)
    assert "Tick the box" in refused.text
    webapp.post(_hook(owner, "/delete"), {"csrf_token": token, "confirm": "yes"}, status=303)
    db.expire_all()
    assert db.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)) is None
    assert "webhook.deleted" in _audit_types(db)


def _actions(world) -> list[tuple[str, dict]]:
    delivery = world.extra["delivery"]
    return [
        (_list(world), {"url": "https://x.example.com/h", "events": ["user.created"]}),
        (_hook(world), {"url": "https://x.example.com/h", "events": ["user.created"]}),
        (_hook(world, "/disable"), {}),
        (_hook(world, "/enable"), {}),
        (_hook(world, "/delete"), {"confirm": "yes"}),
        (_hook(world, "/secret/reveal"), {"password": DEFAULT_PASSWORD}),
        (_hook(world, "/secret/rotate"), {"password": DEFAULT_PASSWORD}),
        (_hook(world, f"/deliveries/{delivery.id}/resend"), {}),
        (_hook(world, "/test"), {}),
    ]


def _state(db) -> list[tuple]:
    db.expire_all()
    return [tuple(r) for r in db.execute(select(WebhookEndpoint.url, WebhookEndpoint.enabled,
                                                WebhookEndpoint.secret_ciphertext))] + [
        (db.scalar(select(func.count()).select_from(AuditEvent)),)]


def test_every_form_needs_its_csrf_token(webapp, db, owner):
    before = _state(db)
    for path, data in _actions(owner):
        webapp.post(path, data, status=400)
        webapp.post(path, {**data, "csrf_token": "forged"}, status=400)
    assert _state(db) == before


def test_a_viewer_sees_the_pages_but_changes_nothing(webapp, db, passwords, world):
    viewer = add_member(db, passwords, world.tenant_id, Role.VIEWER)
    db.commit()
    sign_in(webapp, viewer.email)
    page = webapp.get(_hook(world))
    assert page.html.find(id="deliveries") is not None
    assert not [f for f in page.forms.values() if "/webhooks" in f.action]
    assert "only owners and admins" in page.text
    before = _state(db)
    token = csrf_token(webapp)
    for path, data in _actions(world):
        webapp.post(path, {**data, "csrf_token": token}, status=403)
    assert _state(db) == before


def test_other_tenants_get_not_found(webapp, db, passwords, secret_box, world):
    intruder = build_world(db, passwords, secret_box)
    own_hook, _ = add_webhook(db, secret_box, intruder.app)
    db.commit()
    sign_in(webapp, intruder.owner.email)
    webapp.get(_list(world), status=404)
    webapp.get(_hook(world), status=404)
    # The intruder's own app with the victim's webhook and delivery ids.
    foreign = f"/dashboard/apps/{intruder.app.app_id}/webhooks/{world.extra['endpoint'].id}"
    webapp.get(foreign, status=404)
    delivery = world.extra["delivery"]
    own = f"/dashboard/apps/{intruder.app.app_id}/webhooks/{own_hook.id}"
    before = _state(db)
    token = csrf_token(webapp)
    for path, data in _actions(world):
        webapp.post(path, {**data, "csrf_token": token}, status=404)
    webapp.post(f"{own}/deliveries/{delivery.id}/resend", {"csrf_token": token}, status=404)
    webapp.get(f"{_list(world)}/not-a-uuid", status=404)
    assert _state(db) == before
