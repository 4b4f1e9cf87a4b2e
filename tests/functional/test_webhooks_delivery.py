"""Delivery against a real receiver on loopback: signature, attempts, retries with
the same event id, giving up, disabling a failing endpoint, the SSRF guard,
and two workers never taking the same delivery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid

import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from saas.apps.services import create_app
from saas.crypto import SecretBox
from saas.db import utcnow
from saas.passwords import Passwords
from saas.tenants.models import Tenant
from saas.tenants.services import sign_up
from saas.webhooks.delivery import Policy, claim_due, deliver_due
from saas.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from saas.webhooks.verify import verify_webhook
from tests.functional.test_webhooks_support import add_delivery, add_webhook, running_receiver
from tests.waiting import wait_until

FAST = Policy(retry_base=0.05, retry_cap=0.1, retry_for=30, timeout=2, disable_after=3600,
              disable_min_failures=100, allow_private=True)
# One attempt and no retry within the run, however slow the machine: a failed
# attempt's retry (50 ms later under FAST) must not come due inside deliver_due.
ONE_TRY = dataclasses.replace(FAST, retry_base=3600, retry_cap=3600)


@pytest.fixture
def session_factory(db_connection):
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                        expire_on_commit=False)


@pytest.fixture
def receiver():
    with running_receiver() as receiver:
        yield receiver


def _attempts(db, delivery) -> list[WebhookAttempt]:
    db.expire_all()
    return list(db.scalars(select(WebhookAttempt).where(
        WebhookAttempt.delivery_id == delivery.id).order_by(WebhookAttempt.at)))


def _run_until(session_factory, secret_box, policy, done):
    """Deliver what is due until ``done()``, for as long as attempts are made."""
    attempts = [0]

    def step() -> bool:
        if done():
            return True
        counts = deliver_due(session_factory, secret_box, policy, time_budget=1.0)
        attempts[0] += counts["delivered"] + counts["failed"]
        return False

    wait_until(step, "the deliveries to settle", progress=lambda: attempts[0])


def test_a_delivery_is_signed_posted_and_recorded(db, login_app, secret_box, receiver,
                                                  session_factory):
    endpoint, secret = add_webhook(db, secret_box, login_app, url=receiver.url)
    delivery = add_delivery(db, endpoint, "login.succeeded",
                            {"user_id": "u1", "external_id": "ann", "reason": None})
    db.commit()
    counts = deliver_due(session_factory, secret_box, FAST)
    assert counts == {"delivered": 1, "failed": 0}
    (request,) = receiver.requests
    event = verify_webhook(request.body, request.headers["Bridgekeeper-Signature"], secret)
    assert event == {"id": str(delivery.event_id), "type": "login.succeeded",
                     "created_at": event["created_at"], "app_id": login_app.app_id,
                     "data": {"user_id": "u1", "external_id": "ann", "reason": None}}
    assert event["created_at"].endswith("Z")
    assert request.headers["Bridgekeeper-Event-Id"] == str(delivery.event_id)
    assert request.headers["Content-Type"] == "application/json"
    db.expire_all()
    assert db.get(type(delivery), delivery.id).status == DeliveryStatus.DELIVERED
    (attempt,) = _attempts(db, delivery)
    assert attempt.ok and attempt.status_code == 200 and attempt.latency_ms >= 0
    assert attempt.response_snippet == "answered 200 to request 1" and attempt.error is None
    assert deliver_due(session_factory, secret_box, FAST) == {"delivered": 0, "failed": 0}


def test_a_receiver_failing_three_times_gets_the_same_event_when_it_recovers(
        db, login_app, secret_box, receiver, session_factory):
    receiver.answer = lambda request, n: 503 if n <= 3 else 204
    endpoint, secret = add_webhook(db, secret_box, login_app, url=receiver.url)
    delivery = add_delivery(db, endpoint)
    db.commit()
    _run_until(session_factory, secret_box, FAST, lambda: len(receiver.requests) >= 4)
    ids = {verify_webhook(r.body, r.headers["Bridgekeeper-Signature"], secret)["id"]
           for r in receiver.requests}
    assert ids == {str(delivery.event_id)} and len({r.body for r in receiver.requests}) == 1
    attempts = _attempts(db, delivery)
    assert [(a.ok, a.status_code, a.error) for a in attempts] == [
        (False, 503, "HTTP 503")] * 3 + [(True, 204, None)]
    db.refresh(endpoint)
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None
    assert db.get(type(delivery), delivery.id).status == DeliveryStatus.DELIVERED


def test_retries_stop_after_the_window_and_a_failing_endpoint_is_disabled(
        db, login_app, secret_box, receiver, session_factory):
    receiver.answer = lambda request, n: 500
    policy = dataclasses.replace(FAST, retry_for=0.5, disable_after=0.3, disable_min_failures=3)
    endpoint, _ = add_webhook(db, secret_box, login_app, url=receiver.url)
    delivery = add_delivery(db, endpoint)
    db.commit()
    _run_until(session_factory, secret_box, policy,
               lambda: db.get(type(delivery), delivery.id, populate_existing=True).status
               != DeliveryStatus.PENDING or not db.get(WebhookEndpoint, endpoint.id,
                                                       populate_existing=True).enabled)
    db.refresh(endpoint)
    assert not endpoint.enabled and endpoint.consecutive_failures >= 3
    assert "Disabled automatically" in endpoint.disabled_reason
    assert "its events wait for it meanwhile" in endpoint.disabled_reason
    # A disabled endpoint gets nothing more, even when something is due.
    add_delivery(db, endpoint)
    db.commit()
    sent = len(receiver.requests)
    deliver_due(session_factory, secret_box, policy)
    assert len(receiver.requests) == sent


def test_a_delivery_gives_up_when_its_retry_window_ends(db, login_app, secret_box, receiver,
                                                        session_factory):
    receiver.answer = lambda request, n: 500
    policy = dataclasses.replace(FAST, retry_for=0.4)
    endpoint, _ = add_webhook(db, secret_box, login_app, url=receiver.url)
    delivery = add_delivery(db, endpoint)
    db.commit()
    _run_until(session_factory, secret_box, policy,
               lambda: db.get(type(delivery), delivery.id, populate_existing=True).status
               == DeliveryStatus.FAILED)
    attempts = _attempts(db, delivery)
    assert len(attempts) >= 2 and not any(a.ok for a in attempts)
    last = attempts[-1].at
    assert last - delivery.retry_from >= dt.timedelta(seconds=0.4)  # tried at the very end


def test_the_ssrf_guard_refuses_loopback_in_production(db, login_app, secret_box, receiver,
                                                       session_factory):
    endpoint, _ = add_webhook(db, secret_box, login_app, url=receiver.url)
    delivery = add_delivery(db, endpoint)
    db.commit()
    production = dataclasses.replace(ONE_TRY, allow_private=False)
    assert deliver_due(session_factory, secret_box, production) == {"delivered": 0, "failed": 1}
    assert receiver.requests == []
    (attempt,) = _attempts(db, delivery)
    assert attempt.status_code is None and attempt.error.startswith("endpoint refused")


def test_an_unreachable_receiver_is_an_attempt_with_an_error(db, login_app, secret_box,
                                                             session_factory):
    from tests.live import free_port

    endpoint, _ = add_webhook(db, secret_box, login_app,
                              url=f"http://127.0.0.1:{free_port()}/gone")
    delivery = add_delivery(db, endpoint)
    db.commit()
    deliver_due(session_factory, secret_box, ONE_TRY)
    (attempt,) = _attempts(db, delivery)
    assert not attempt.ok and attempt.status_code is None
    assert "ConnectionRefusedError" in attempt.error


def test_two_workers_never_claim_the_same_delivery(app_settings):
    """SKIP LOCKED on committed rows, with two real connections."""
    engine = create_engine(app_settings["sqlalchemy.url"])
    box = SecretBox(app_settings["saas.master_key"])
    with Session(engine, expire_on_commit=False) as session:
        member = sign_up(session, Passwords(), tenant_name="Claims",
                         email=f"claims-{uuid.uuid4().hex[:8]}@example.com",
                         password="correct horse battery staple")
        app, _ = create_app(session, box, tenant_id=member.tenant_id, name="Claims")
        endpoint, _ = add_webhook(session, box, app)
        ids = {add_delivery(session, endpoint).id for _ in range(3)}
        session.commit()
    try:
        first, second = Session(engine), Session(engine)
        with first.begin(), second.begin():
            now = utcnow() + dt.timedelta(seconds=1)
            taken = {c.delivery_id for c in claim_due(first, now, FAST, limit=2)}
            rest = {c.delivery_id for c in claim_due(second, now, FAST, limit=10)}
            assert len(taken) == 2 and taken | rest >= ids and not taken & rest
        first.close()
        second.close()
    finally:
        with Session(engine) as session:
            session.execute(delete(Tenant).where(Tenant.id == member.tenant_id))
            session.commit()
        engine.dispose()


def test_the_body_is_compact_sorted_json(db, login_app, secret_box, receiver, session_factory):
    endpoint, _ = add_webhook(db, secret_box, login_app, url=receiver.url)
    add_delivery(db, endpoint, "user.created", {"z": 1, "a": [1, 2]})
    db.commit()
    deliver_due(session_factory, secret_box, FAST)
    body = receiver.requests[0].body
    assert body == json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True).encode()


def test_settled_events_past_the_retention_are_purged(db, login_app, secret_box):
    from saas.webhooks.models import WebhookEvent
    from saas.webhooks.retention import purge_settled_events

    endpoint, _ = add_webhook(db, secret_box, login_app)
    endpoint.previous_secret_ciphertext = secret_box.encrypt("whsec_rotated-out")
    endpoint.previous_secret_valid_until = utcnow() - dt.timedelta(minutes=1)
    old = utcnow() - dt.timedelta(days=31)
    settled = add_delivery(db, endpoint, status=DeliveryStatus.DELIVERED)
    held = add_delivery(db, endpoint)  # pending: kept whatever its age
    recent = add_delivery(db, endpoint, status=DeliveryStatus.FAILED)
    for delivery in (settled, held):
        db.get(WebhookEvent, delivery.event_id).created_at = old
    db.flush()
    ids = {name: (d.id, d.event_id) for name, d in
           (("settled", settled), ("held", held), ("recent", recent))}
    assert purge_settled_events(db, utcnow(), 30) == 1
    db.expire_all()
    left = set(db.scalars(select(WebhookEvent.id)))
    assert ids["settled"][1] not in left and {ids["held"][1], ids["recent"][1]} <= left
    assert db.scalar(select(type(settled)).where(type(settled).id == ids["settled"][0])) is None
    db.refresh(endpoint)  # its rotated-out secret is past the grace period: forgotten
    assert endpoint.previous_secret_ciphertext is None
    assert endpoint.previous_secret_valid_until is None


def test_held_deliveries_wait_for_the_endpoint_then_go_oldest_first(
        db, login_app, secret_box, receiver, session_factory):
    from saas.webhooks.endpoints import update_endpoint
    from saas.webhooks.models import WebhookEvent

    endpoint, secret = add_webhook(db, secret_box, login_app, url=receiver.url)
    update_endpoint(endpoint, {"enabled": False})
    held = [add_delivery(db, endpoint) for _ in range(3)]
    started = utcnow() - dt.timedelta(hours=1)
    for minutes, delivery in zip((20, 0, 40), held, strict=True):  # events out of order
        db.get(WebhookEvent, delivery.event_id).created_at = started + dt.timedelta(
            minutes=minutes)
    db.commit()
    assert deliver_due(session_factory, secret_box, FAST) == {"delivered": 0, "failed": 0}
    assert receiver.requests == []  # held: not attempted at all
    assert all(_attempts(db, d) == [] for d in held)

    update_endpoint(endpoint, {"enabled": True})
    db.commit()
    with session_factory() as session, session.begin_nested():
        claimed = [c.event_id for c in claim_due(session, utcnow(), FAST)]
        session.rollback()
    oldest_first = [held[1].event_id, held[0].event_id, held[2].event_id]
    assert claimed == oldest_first
    assert deliver_due(session_factory, secret_box, FAST) == {"delivered": 3, "failed": 0}
    ids = [verify_webhook(r.body, r.headers["Bridgekeeper-Signature"], secret)["id"]
           for r in receiver.requests]
    assert sorted(ids) == sorted(str(i) for i in oldest_first)  # each once, original ids


def test_held_deliveries_are_given_up_at_the_retention(db, login_app, secret_box):
    from saas.webhooks.models import WebhookDelivery, WebhookEvent
    from saas.webhooks.retention import purge_settled_events

    endpoint, _ = add_webhook(db, secret_box, login_app)
    endpoint.enabled = False
    other, _ = add_webhook(db, secret_box, login_app, url="https://other.example.com/h")
    old = utcnow() - dt.timedelta(days=31)
    too_old = add_delivery(db, endpoint)
    recent = add_delivery(db, endpoint)
    shared = add_delivery(db, endpoint)  # its event also waits for an enabled endpoint
    retried = WebhookDelivery(event_id=shared.event_id, endpoint_id=other.id,
                              next_attempt_at=utcnow(), retry_from=utcnow())
    db.add(retried)
    for delivery in (too_old, shared):
        db.get(WebhookEvent, delivery.event_id).created_at = old
    db.flush()
    gone = (too_old.id, too_old.event_id)
    assert purge_settled_events(db, utcnow(), 30) == 1
    db.expire_all()
    # Given up, then forgotten with its event.
    assert db.get(WebhookDelivery, gone[0]) is None and db.get(WebhookEvent, gone[1]) is None
    assert db.get(WebhookDelivery, recent.id).status == DeliveryStatus.PENDING
    assert db.get(WebhookDelivery, shared.id).status == DeliveryStatus.FAILED
    assert db.get(WebhookDelivery, retried.id).status == DeliveryStatus.PENDING


def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(
        db, login_app, secret_box, receiver, session_factory):
    from saas.webhooks.endpoints import rotate_endpoint_secret
    from saas.webhooks.verify import InvalidSignature

    endpoint, old = add_webhook(db, secret_box, login_app, url=receiver.url)
    new = rotate_endpoint_secret(endpoint, secret_box, grace_seconds=3600)
    add_delivery(db, endpoint)
    db.commit()
    deliver_due(session_factory, secret_box, FAST)
    first = receiver.requests[-1]
    header = first.headers["Bridgekeeper-Signature"]
    assert header.count("v1=") == 2
    for secret in (old, new):  # a receiver with either secret accepts it
        verify_webhook(first.body, header, secret)

    endpoint.previous_secret_valid_until = utcnow() - dt.timedelta(seconds=1)
    add_delivery(db, endpoint)
    db.commit()
    deliver_due(session_factory, secret_box, FAST)
    second = receiver.requests[-1]
    header = second.headers["Bridgekeeper-Signature"]
    assert header.count("v1=") == 1
    verify_webhook(second.body, header, new)
    with pytest.raises(InvalidSignature):
        verify_webhook(second.body, header, old)


def test_a_receiver_keeping_the_connection_open_does_not_hold_the_worker(
        db, login_app, secret_box, session_factory):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    release = threading.Event()

    def answer_and_linger():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        release.wait(10)  # never closes on its own
        conn.close()

    thread = threading.Thread(target=answer_and_linger, daemon=True)
    thread.start()
    try:
        endpoint, _ = add_webhook(db, secret_box, login_app,
                                  url=f"http://127.0.0.1:{listener.getsockname()[1]}/h")
        delivery = add_delivery(db, endpoint)
        db.commit()
        started = time.monotonic()
        slow = dataclasses.replace(FAST, timeout=5)
        assert deliver_due(session_factory, secret_box, slow) == {"delivered": 1, "failed": 0}
        # Well under the 5 s timeout and the 10 s linger, even on a busy machine.
        assert time.monotonic() - started < 4
        (attempt,) = _attempts(db, delivery)
        assert attempt.response_snippet == "ok" and attempt.latency_ms < 4000
    finally:
        release.set()
        thread.join(5)
        listener.close()
