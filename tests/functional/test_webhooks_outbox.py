"""The outbox: webhook events staged in the transaction of the change that causes them.

Real logins append real stream entries; the sync's two writers (the
PostgreSQL COPY path and the generic path) must stage the same events, with
the same ids and data, exactly once however often a batch is applied, and
nothing for apps without endpoints. User actions stage in the request's
transaction; a rollback leaves nothing.
"""

from __future__ import annotations

import json
import uuid

import pytest
from pyramid import testing
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from saas.broker import long_queue
from saas.sync.parse import parse_entry
from saas.sync.writer import apply_batch, prepare_batch
from saas.users.models import end_user_id
from saas.webhooks import outbox
from saas.webhooks.models import EventType, WebhookDelivery, WebhookEvent
from tests.flows import Login, query_of
from tests.functional.test_webhooks_support import add_webhook
from tests.sync_helpers import app_stream


@pytest.fixture
def stream(registry, login_app):
    """The shard of ``login_app``'s events, emptied."""
    return app_stream(registry, login_app.app_id, fresh=True)


def _read_all(stream) -> list:
    entries = stream.read_batch(1000)
    stream.acknowledge([entry_id for entry_id, _ in entries])
    return [parse_entry(entry_id.decode(), fields) for entry_id, fields in entries]


def _apply(db_connection, events, postgres: bool) -> None:
    with db_connection.begin_nested():
        session = Session(bind=db_connection, join_transaction_mode="create_savepoint")
        with session.begin():
            apply_batch(session, prepare_batch(events, postgres))
        session.close()


def _staged(db_connection, app) -> list[tuple]:
    return [tuple(row) for row in db_connection.execute(text(
        "SELECT e.id, e.type, e.data, e.created_at, count(d.id) FROM webhook_events e"
        " LEFT JOIN webhook_deliveries d ON d.event_id = e.id WHERE e.app_id = :app"
        " GROUP BY e.id ORDER BY e.created_at, e.type"), {"app": app.id})]


def _logins(webapp, app) -> dict:
    """Every login-path outcome that maps to a webhook, as real requests."""
    secret = app.plain_secrets["custom_auth"]
    first = Login(webapp, app.app_id, secret).tokens(user_id="ann", custom={"plan": "pro"})
    Login(webapp, app.app_id, secret).finish(user_id=None)  # login.failed, user_id_missing
    webapp.post(f"/v1/apps/{app.app_id}/logout",
                {"refresh_token": first["refresh_token"]}, status=204)
    login = Login(webapp, app.app_id, secret)
    code = query_of(login.finish(user_id="bob").location)["code"]
    login.exchange(code)
    login.exchange(code, status=400)  # a reused code revokes its session
    return first


def _second_round(webapp, app) -> None:
    secret = app.plain_secrets["custom_auth"]
    Login(webapp, app.app_id, secret).tokens(user_id="ann", custom={"plan": "team"})
    Login(webapp, app.app_id, secret).tokens(user_id="bob")  # nothing of bob changes


def test_both_writers_stage_the_same_events_once(webapp, db, db_connection, login_app,
                                                 secret_box, stream):
    add_webhook(db, secret_box, login_app)
    db.commit()
    _logins(webapp, login_app)
    first = _read_all(stream)
    _second_round(webapp, login_app)
    second = _read_all(stream)

    results = {}
    for postgres in (True, False):
        outer = db_connection.begin_nested()
        for batch in (first, first, second, second + first):  # replays stage nothing more
            _apply(db_connection, batch, postgres)
        results[postgres] = _staged(db_connection, login_app)
        outer.rollback()
    assert results[True] == results[False]

    by_type: dict[str, list] = {}
    for _id, type_, data, _at, deliveries in results[True]:
        assert deliveries == 1
        by_type.setdefault(type_, []).append(data)
    ann = str(end_user_id(login_app.id, "ann"))
    assert sorted(by_type) == sorted(["user.created", "user.updated", "login.succeeded",
                                      "login.failed", "session.revoked"])
    assert sorted((d["external_id"], d["custom"]) for d in by_type["user.created"]) == [
        ("ann", {"plan": "pro"}), ("bob", {})]
    # bob's second login changed nothing: only ann was updated.
    assert by_type["user.updated"] == [{"user_id": ann, "external_id": "ann",
                                        "custom": {"plan": "team"}, "profile": {}}]
    assert len(by_type["login.succeeded"]) == 4
    assert all(d["flow"] == "redirect" and d["reason"] is None
               for d in by_type["login.succeeded"])
    (failed,) = by_type["login.failed"]
    assert failed["reason"] == "user_id_missing" and failed["audit_type"] == "login.failed"
    causes = sorted(d["cause"] for d in by_type["session.revoked"])
    assert causes == ["code_reused", "logout"]
    assert all(d["session_id"] for d in by_type["session.revoked"])


@pytest.mark.parametrize("postgres", [True, False], ids=["copy", "generic"])
def test_a_disabled_user_refused_is_named_in_the_audit_and_the_webhook(
        webapp, db, db_connection, login_app, registry, secret_box, stream, postgres):
    """The refusal knows who was refused: its audit row and its ``login.failed``
    event carry ``user_id`` and ``external_id`` (redirect and custom-token logins)."""
    from saas.audit.models import AuditEvent
    from saas.users.disabled import set_disabled
    from tests.functional.test_custom_token import skygear_token

    add_webhook(db, secret_box, login_app, events=["login.failed"])
    login_app.custom_token_enabled = True
    db.commit()
    registry["saas.app_cache"].store(login_app)
    banned = str(end_user_id(login_app.id, "banned"))
    set_disabled(registry["saas.redis"], registry["saas.redis_keys"], login_app.app_id,
                 banned, True)
    back = query_of(Login(webapp, login_app.app_id, login_app.plain_secrets["custom_auth"])
                    .finish(user_id="banned").location)
    assert back["reason"] == "user_disabled"
    refused = webapp.post_json(f"/v1/apps/{login_app.app_id}/login/custom-token", {
        "token": skygear_token(login_app.plain_secrets["custom_token"], user_id="banned")},
        status=400)
    assert refused.json["reason"] == "user_disabled"
    _apply(db_connection, _read_all(stream), postgres)

    rows = db.scalars(select(AuditEvent).where(AuditEvent.app_id == login_app.app_id,
                                               AuditEvent.reason == "user_disabled")).all()
    assert sorted((r.type, str(r.user_id), r.external_id) for r in rows) == [
        ("custom_token.failed", banned, "banned"), ("login.failed", banned, "banned")]
    staged = _staged(db_connection, login_app)
    assert sorted((data["audit_type"], data["user_id"], data["external_id"], data["reason"])
                  for _id, type_, data, _at, _n in staged if type_ == "login.failed") == [
        ("custom_token.failed", banned, "banned", "user_disabled"),
        ("login.failed", banned, "banned", "user_disabled")]


def test_event_ids_are_the_audit_ids_and_stable(webapp, db, db_connection, login_app,
                                                secret_box, stream):
    add_webhook(db, secret_box, login_app, events=["login.succeeded"])
    db.commit()
    Login(webapp, login_app.app_id, login_app.plain_secrets["custom_auth"]).tokens(
        user_id="cy")
    events = _read_all(stream)
    _apply(db_connection, events, True)
    audit_ids = {uuid.UUID(r["id"]) for e in events for r in e.audit
                 if r["type"] == "login.succeeded"}
    staged = {row[0] for row in _staged(db_connection, login_app)}
    assert staged == audit_ids and len(staged) == 1


@pytest.mark.parametrize("postgres", [True, False], ids=["copy", "generic"])
def test_apps_without_endpoints_stage_nothing(webapp, db, db_connection, login_app,
                                              secret_box, stream, passwords, postgres):
    from tests.factories import make_app, make_member

    other_member = make_member(db, passwords)
    other, _ = make_app(db, secret_box, other_member.tenant_id)
    add_webhook(db, secret_box, other)  # someone else's endpoint: the short-circuit fails
    db.commit()
    _logins(webapp, login_app)
    _apply(db_connection, _read_all(stream), postgres)
    assert _staged(db_connection, login_app) == []


@pytest.mark.parametrize("postgres", [True, False], ids=["copy", "generic"])
def test_subscribed_endpoints_get_deliveries_a_disabled_one_held(
        webapp, db, db_connection, login_app, secret_box, stream, postgres):
    failures, _ = add_webhook(db, secret_box, login_app, url="https://a.example.com/h",
                              events=["login.failed"])
    everything, _ = add_webhook(db, secret_box, login_app, url="https://b.example.com/h")
    switched_off, _ = add_webhook(db, secret_box, login_app, url="https://c.example.com/h")
    switched_off.enabled = False
    db.commit()
    _logins(webapp, login_app)
    _apply(db_connection, _read_all(stream), postgres)
    db.expire_all()
    per_endpoint = dict(db.execute(select(WebhookDelivery.endpoint_id, func.count())
                                   .group_by(WebhookDelivery.endpoint_id)).all())
    assert per_endpoint[failures.id] == 1
    assert per_endpoint[everything.id] == len(_staged(db_connection, login_app)) > 1
    # The disabled endpoint's events wait for it: pending deliveries, held.
    assert per_endpoint[switched_off.id] == per_endpoint[everything.id]
    assert set(db.scalars(select(WebhookDelivery.status).where(
        WebhookDelivery.endpoint_id == switched_off.id))) == {"pending"}


@pytest.mark.parametrize("postgres", [True, False], ids=["copy", "generic"])
def test_an_app_whose_only_endpoint_is_disabled_still_stages(
        webapp, db, db_connection, login_app, secret_box, stream, postgres):
    """The sync's first probe ("any endpoint at all?") counts disabled endpoints."""
    switched_off, _ = add_webhook(db, secret_box, login_app, events=["login.succeeded"])
    switched_off.enabled = False
    db.commit()
    Login(webapp, login_app.app_id, login_app.plain_secrets["custom_auth"]).tokens(
        user_id="dee")
    _apply(db_connection, _read_all(stream), postgres)
    (staged,) = _staged(db_connection, login_app)
    assert staged[1] == "login.succeeded" and staged[4] == 1


def _request(registry, db):
    request = testing.DummyRequest(db=db)
    request.registry = registry
    return request


def test_user_actions_stage_with_their_transaction(db, registry, login_app, secret_box):
    endpoint, _ = add_webhook(db, secret_box, login_app, events=["user.deleted"])
    db.commit()
    request = _request(registry, db)
    data = {"user_id": "u", "external_id": "x"}
    assert outbox.stage(request, login_app, EventType.USER_DISABLED, data) is None  # unwanted

    savepoint = db.begin_nested()
    rolled_back = outbox.stage(request, login_app, EventType.USER_DELETED, data)
    savepoint.rollback()
    kept = outbox.stage(request, login_app, EventType.USER_DELETED, data)
    db.flush()
    assert db.get(WebhookEvent, rolled_back) is None
    event = db.get(WebhookEvent, kept)
    assert event.type == "user.deleted" and event.data == data
    (delivery,) = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == kept))
    assert delivery.endpoint_id == endpoint.id and delivery.status == "pending"

    endpoint.enabled = False  # a disabled endpoint's events are held for it, not dropped
    db.flush()
    held = outbox.stage(request, login_app, EventType.USER_DELETED, data)
    (delivery,) = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == held))
    assert delivery.endpoint_id == endpoint.id and delivery.status == "pending"


@pytest.fixture
def worker_celery(app_settings, broker_client):
    """A non-eager Celery app, current in this thread, publishing to a queue of its own."""
    from celery import _state as celery_state

    from saas.tasks import make_celery

    queue = f"bk-test-kick-{uuid.uuid4().hex}"
    previous = (celery_state.default_app, celery_state._tls.current_app)
    app = make_celery({**app_settings, "celery.always_eager": "false",
                       "celery.default_queue": queue})
    try:
        yield app, queue
    finally:
        celery_state.set_default_app(previous[0])
        celery_state._set_current_app(previous[1])
        broker_client.delete(queue, long_queue(queue))


def _kicks(broker_client, queue: str) -> list[str]:
    # Webhook delivery is a long task: its kicks go to the long queue (saas.broker).
    return [json.loads(raw)["headers"]["task"]
            for raw in broker_client.lrange(long_queue(queue), 0, -1)]


@pytest.mark.parametrize("postgres", [True, False], ids=["copy", "generic"])
def test_a_sync_commit_that_staged_events_kicks_the_workers(
        webapp, db, db_connection, login_app, secret_box, stream, broker_client, worker_celery,
        postgres):
    _app, queue = worker_celery
    add_webhook(db, secret_box, login_app, events=["login.succeeded"])
    db.commit()
    secret = login_app.plain_secrets["custom_auth"]
    Login(webapp, login_app.app_id, secret).tokens(user_id="dee")
    events = _read_all(stream)
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint")
    session.begin()
    apply_batch(session, prepare_batch(events, postgres))
    session.rollback()  # nothing committed: no kick
    assert _kicks(broker_client, queue) == []
    with session.begin():
        apply_batch(session, prepare_batch(events, postgres))
    assert _kicks(broker_client, queue) == ["workers.webhooks.deliver"]
    with session.begin():  # applied again: nothing new staged, no kick
        apply_batch(session, prepare_batch(events, postgres))
    session.close()
    assert _kicks(broker_client, queue) == ["workers.webhooks.deliver"]
