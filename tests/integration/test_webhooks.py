"""Webhooks end to end: real logins, a real ``celery -A workers worker -B`` process,
real PostgreSQL and Redis, and a receiver run by the test on loopback.

The receiver checks every request with the documented recipe
(``saas.webhooks.verify.verify_webhook``, docs/webhooks.md) and refuses the
first three: those events still arrive, with the same ids, once it recovers.
Events staged in a transaction are delivered only after it commits, and never
when it rolls back — even though the worker is kicked while it is open.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from pyramid import testing
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from saas.apikeys.services import create_api_key
from saas.crypto import SecretBox
from saas.webhooks import outbox
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.models import EventType, WebhookAttempt, WebhookDelivery
from saas.webhooks.verify import InvalidSignature, verify_webhook
from tests.flows import CLIENT_REDIRECT, Login
from tests.functional.test_webhooks_support import Receiver, running_receiver
from tests.integration.test_sync_worker import SyncEnv
from tests.live import committed_app

pytestmark = pytest.mark.integration

FAILING_FIRST = 3
QUIET_SECONDS = 3.0  # beat runs the delivery task every second: three chances to misbehave


class HookEnv:
    """The sync test's world plus an endpoint, its secret, an API key and a receiver."""

    def __init__(self, env: SyncEnv, receiver: Receiver) -> None:
        self.env = env
        self.receiver = receiver
        box = SecretBox(env.settings["saas.master_key"])
        with Session(env.engine, expire_on_commit=False) as session:
            self.endpoint, self.secret = create_endpoint(
                session, box, env.app, {"url": receiver.url, "events": list(EVENT_TYPES)})
            _key, self.api_key = create_api_key(session, env.app.tenant_id, "hooks")
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
