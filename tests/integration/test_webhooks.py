"""Webhooks end to end: real logins, a real ``celery -A workers worker -B`` process,
real PostgreSQL and Redis, and a receiver run by the test on loopback.

The receiver checks every request with the documented recipe
(``saas.webhooks.verify.verify_webhook``, docs/webhooks.md) and refuses the
first three: those events still arrive, with the same ids, once it recovers.
Events staged in a transaction are delivered only after it commits, and never
when it rolls back — even though the worker is kicked while it is open. Events
raised while the endpoint is disabled wait for it and arrive once it is enabled.
Under ``make run``'s development.ini (no worker) the web process delivers them.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import plaster
import pytest
import webtest
from alembic import command
from pyramid import testing
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from saas.apikeys.services import create_api_key
from saas.apps.services import create_app
from saas.config import configure
from saas.crypto import SecretBox
from saas.passwords import Passwords
from saas.tasks import WEBHOOK_PERIOD
from saas.tenants.services import sign_up
from saas.webhooks import outbox
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.models import EventType, WebhookAttempt, WebhookDelivery
from saas.webhooks.verify import InvalidSignature, verify_webhook
from tests.conftest import ROOT, alembic_config
from tests.factories import make_api_key
from tests.flows import CLIENT_REDIRECT, Login
from tests.functional.test_webhooks_support import Receiver, running_receiver
from tests.integration.test_sync_worker import SyncEnv
from tests.live import committed_app

pytestmark = pytest.mark.integration

FAILING_FIRST = 3
# Longer than beat's delivery period: at least one of its runs could misbehave.
QUIET_SECONDS = WEBHOOK_PERIOD + 1.0


class HookEnv:
    """The sync test's world plus an endpoint, its secret, an API key and a receiver."""

    def __init__(self, env: SyncEnv, receiver: Receiver) -> None:
        self.env = env
        self.receiver = receiver
        box = SecretBox(env.settings["saas.master_key"])
        with Session(env.engine, expire_on_commit=False) as session:
            self.endpoint, self.secret = create_endpoint(
                session, box, env.app, {"url": receiver.url, "events": list(EVENT_TYPES)})
            _key, self.api_key = make_api_key(session, env.app.tenant_id, "hooks")
            session.commit()
        # The web tier sends its kicks to this test's queue, for the worker process.
        self.web = env.web(**{"celery.always_eager": "false",
                              "celery.default_queue": env.queue})

    def verified(self) -> list[dict]:
        """Every request the receiver accepted, checked as docs/webhooks.md shows."""
        events = []
        for request in self.receiver.requests:
            header = request.headers.get("Bridgekeeper-Signature", "")
            try:
                event = verify_webhook(request.body, header, self.secret)
            except InvalidSignature as exc:
                pytest.fail(f"a request failed verification: {exc}")
            events.append(event)
        return events

    def accepted(self) -> list[dict]:
        return self.verified()[FAILING_FIRST:]

    def types(self) -> set[str]:
        return {event["type"] for event in self.accepted()}

    def undelivered(self) -> int:
        with self.env.engine.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e"
                " AND status <> 'delivered'"), {"e": self.endpoint.id})

    def manage(self, method: str, path: str, status: int = 204):
        url = f"/v1/manage/apps/{self.env.app.app_id}/{path}"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return getattr(self.web, method)(url, headers=headers, status=status)


@pytest.fixture
def hooks(app_settings, redis_client, tmp_path) -> Iterator[HookEnv]:
    with running_receiver() as receiver, committed_app(
            app_settings, custom_auth_endpoint="https://tenant.example.com/auth",
            redirect_uris=[CLIENT_REDIRECT]) as (app, secrets):
        receiver.answer = lambda request, n: 503 if n <= FAILING_FIRST else 200
        env = SyncEnv(app_settings, tmp_path, app, secrets)
        # Tiny retry delays so the recovering receiver is retried within seconds.
        env.settings.update({"saas.webhooks.retry_base": "0.2", "saas.webhooks.retry_cap": "0.5"})
        try:
            yield HookEnv(env, receiver)
        finally:
            env.close()  # workers stop before committed_app deletes the tenant


def test_each_event_type_arrives_signed_and_failures_are_retried(hooks):
    env = hooks.env
    env.start_worker()
    ann = env.login(hooks.web, "ann", custom={"plan": "pro"})
    env.wait_for(lambda: "ann" in env.users(), "ann synced")
    env.login(hooks.web, "ann", custom={"plan": "team"})  # user.updated
    # Synced before the tenant deletes ann: else that login would create ann afresh.
    env.wait_for(lambda: env.users()["ann"]["custom"] == {"plan": "team"}, "ann updated")
    Login(hooks.web, env.app.app_id, env.secret).finish(user_id=None)  # login.failed
    hooks.web.post(f"/v1/apps/{env.app.app_id}/logout",
                   {"refresh_token": ann["refresh_token"]}, status=204)  # session.revoked
    user = ann["user"]["id"]
    hooks.manage("post", f"users/{user}/revoke-sessions")  # session.revoked, by the tenant
    hooks.manage("post", f"users/{user}/disable")  # user.disabled
    hooks.manage("delete", f"users/{user}")  # user.deleted

    env.wait_for(lambda: hooks.types() == set(EVENT_TYPES) and hooks.undelivered() == 0,
                 "every event type, every delivery done")

    events = hooks.accepted()
    assert all(e["app_id"] == env.app.app_id for e in events)
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    (created,) = by_type["user.created"]
    assert created["data"] == {"user_id": user, "external_id": "ann",
                               "custom": {"plan": "pro"}, "profile": {}}
    assert by_type["user.updated"][0]["data"]["custom"] == {"plan": "team"}
    assert by_type["login.failed"][0]["data"]["reason"] == "user_id_missing"
    assert {e["data"]["cause"] for e in by_type["session.revoked"]} == {
        "logout", "revoked_by_tenant"}
    assert by_type["user.deleted"][0]["data"]["external_id"] == "ann"

    # The three refused requests were retried: the same events (same ids) came back.
    refused_ids = {e["id"] for e in hooks.verified()[:FAILING_FIRST]}
    assert refused_ids <= {e["id"] for e in events}
    with env.engine.connect() as conn:
        failed_attempts = conn.scalar(text(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d"
            " ON d.id = a.delivery_id WHERE d.endpoint_id = :e AND a.status_code = 503"),
            {"e": hooks.endpoint.id})
    assert failed_attempts == FAILING_FIRST
    # At-least-once: an event may come twice, but one id always means one content.
    first_seen: dict[str, dict] = {}
    for event in hooks.verified():
        assert first_seen.setdefault(event["id"], event) == event


def _stage(hooks: HookEnv, session: Session, marker: str) -> uuid.UUID:
    """A real outbox write in ``session``'s open transaction; it kicks the worker at once
    (outside a Pyramid request the kick is not deferred: the worker runs meanwhile)."""
    request = testing.DummyRequest(db=session)
    request.registry = hooks.web.app.registry
    app = session.get(type(hooks.env.app), hooks.env.app.id)
    return outbox.stage(request, app, EventType.USER_DISABLED,
                        {"user_id": None, "external_id": marker})


def _received_ids(hooks: HookEnv) -> set[str]:
    return {event["id"] for event in hooks.verified()}


def test_delivery_waits_for_the_commit_and_a_rollback_sends_nothing(hooks):
    hooks.receiver.answer = lambda request, n: 200
    env = hooks.env
    env.start_worker()

    with Session(env.engine) as session:
        open_id = _stage(hooks, session, "committed later")
        time.sleep(QUIET_SECONDS)
        assert str(open_id) not in _received_ids(hooks), "delivered before the commit"
        session.commit()
    env.wait_for(lambda: str(open_id) in _received_ids(hooks), "delivery after commit")

    with Session(env.engine) as session:
        rolled_back = _stage(hooks, session, "rolled back")
        time.sleep(QUIET_SECONDS / 2)
        session.rollback()
    with Session(env.engine) as session:
        marker = _stage(hooks, session, "after the rollback")
        session.commit()
    env.wait_for(lambda: str(marker) in _received_ids(hooks), "the marker's delivery")
    time.sleep(QUIET_SECONDS)
    assert str(rolled_back) not in _received_ids(hooks)
    with Session(env.engine) as session:
        assert session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.event_id == rolled_back)) is None
        attempts = session.scalars(select(WebhookAttempt).join(
            WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id).where(
            WebhookDelivery.endpoint_id == hooks.endpoint.id)).all()
    assert len(attempts) == 2 and all(a.ok for a in attempts)


def _deliveries(hooks: HookEnv) -> dict[str, str]:
    """event id → delivery status, for the endpoint."""
    with hooks.env.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT event_id, status FROM webhook_deliveries WHERE endpoint_id = :e"),
            {"e": hooks.endpoint.id}).all()
    return {str(event_id): status for event_id, status in rows}


def test_events_raised_while_disabled_arrive_once_with_their_ids_after_enabling(hooks):
    hooks.receiver.answer = lambda request, n: 200
    env = hooks.env
    hook = f"/v1/manage/apps/{env.app.app_id}/webhooks/{hooks.endpoint.id}"
    auth = {"Authorization": f"Bearer {hooks.api_key}"}
    assert hooks.web.patch_json(hook, {"enabled": False}, headers=auth).json["enabled"] is False
    env.start_worker()

    # A login synced by the worker (user.created, login.succeeded) and a tenant's action.
    ann = env.login(hooks.web, "ann")
    env.wait_for(lambda: "ann" in env.users(), "ann synced")
    hooks.manage("post", f"users/{ann['user']['id']}/disable")  # user.disabled
    held = env.wait_for(lambda: len(_deliveries(hooks)) >= 3 and _deliveries(hooks),
                        "three held deliveries")
    assert set(held.values()) == {"pending"}
    time.sleep(QUIET_SECONDS)  # beat runs the delivery task meanwhile
    assert hooks.receiver.requests == [], "delivered while the endpoint was disabled"
    assert set(_deliveries(hooks).values()) == {"pending"}

    assert hooks.web.patch_json(hook, {"enabled": True}, headers=auth).json["enabled"] is True
    env.wait_for(lambda: set(_deliveries(hooks).values()) == {"delivered"},
                 "the held deliveries delivered")
    time.sleep(QUIET_SECONDS)  # nothing comes twice
    received = [event["id"] for event in hooks.verified()]
    assert sorted(received) == sorted(held)  # exactly once each, with the original ids
    assert {event["type"] for event in hooks.verified()} == {
        "user.created", "login.succeeded", "user.disabled"}


def test_make_run_delivers_login_webhooks_from_the_web_process(tmp_path):
    """development.ini as ``make run`` reads it (SQLite, the in-process store, Celery
    eager, ``saas.sync.embedded``), only moved to a fresh database and store: no
    worker runs, yet a login's events and a tenant action's event reach the receiver."""
    settings = dict(plaster.get_settings(os.path.join(ROOT, "development.ini"), "app:main"))
    assert settings["saas.sync.embedded"] == "true" and settings["celery.always_eager"] == "true"
    settings.update({"sqlalchemy.url": f"sqlite:///{tmp_path / 'development.sqlite'}",
                     "redis.url": f"memory://make-run-{uuid.uuid4().hex}",
                     "saas.public_base_url": "http://bk.test"})
    command.upgrade(alembic_config(settings["sqlalchemy.url"]), "head")
    engine = create_engine(settings["sqlalchemy.url"])
    box = SecretBox(settings["saas.master_key"])
    with running_receiver() as receiver:
        with Session(engine, expire_on_commit=False) as session:
            member = sign_up(session, Passwords(), tenant_name="Dev", email="dev@example.com",
                             password="development password")
            app, secrets = create_app(session, box, tenant_id=member.tenant_id, name="Dev",
                                      custom_auth_endpoint="https://tenant.example.com/auth",
                                      redirect_uris=[CLIENT_REDIRECT], allow_private=True)
            _endpoint, secret = create_endpoint(session, box, app, {
                "url": receiver.url, "events": list(EVENT_TYPES)})
            _key, api_key = create_api_key(session, member.tenant_id, "dev",
                                           created_by_id=member.id)
            session.commit()
        before = set(threading.enumerate())
        wsgi = configure(settings).make_wsgi_app()
        embedded = set(threading.enumerate()) - before
        web = webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "bk.test"})
        try:
            def received() -> dict[str, list[dict]]:
                events: dict[str, list[dict]] = {}
                for request in list(receiver.requests):
                    event = verify_webhook(request.body,
                                           request.headers["Bridgekeeper-Signature"], secret)
                    events.setdefault(event["type"], []).append(event)
                return events

            ann = Login(web, app.app_id, secrets["custom_auth"]).tokens(user_id="ann")
            _wait(lambda: {"user.created", "login.succeeded"} <= set(received()),
                  "the login's webhooks")
            web.post(f"/v1/manage/apps/{app.app_id}/users/{ann['user']['id']}/disable",
                     headers={"Authorization": f"Bearer {api_key}"}, status=204)
            _wait(lambda: "user.disabled" in received(), "the tenant action's webhook")
            time.sleep(QUIET_SECONDS)
            events = received()
            assert {type_: len(found) for type_, found in events.items()} == {
                "user.created": 1, "login.succeeded": 1, "user.disabled": 1}
            assert events["login.succeeded"][0]["data"]["external_id"] == "ann"
            with Session(engine) as session:
                assert set(session.scalars(select(WebhookDelivery.status))) == {"delivered"}
        finally:
            wsgi.registry["saas.sync.embedded_stop"].set()
            for thread in embedded:
                thread.join(timeout=10)
            wsgi.registry["saas.db_engine"].dispose()
            engine.dispose()


def _wait(predicate, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not received within {seconds} s"
        time.sleep(0.1)
