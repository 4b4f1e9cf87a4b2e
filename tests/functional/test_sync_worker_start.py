"""A worker that becomes ready drains at once (``workers.sync.drain_when_ready``):
beat's drain comes every few seconds, so a new worker must not wait for it."""

from __future__ import annotations

import json
import types
import uuid

from saas.tasks import TaskName, make_celery
from workers.sync import drain_when_ready

BROKER = "redis://localhost:6379/0"


def _queued_tasks(broker_client, queue: str) -> list[str]:
    return [json.loads(message)["headers"]["task"]
            for message in broker_client.lrange(queue, 0, -1)]


def test_a_ready_worker_sends_itself_a_drain_run(app_settings, broker_client):
    queue = f"bk-ready-{uuid.uuid4().hex[:8]}"
    app = make_celery({**app_settings, "celery.broker_url": BROKER, "celery.always_eager": "false",
                       "celery.default_queue": queue}, set_as_current=False)
    app.loader.import_default_modules()  # as the worker does before it is ready
    try:
        drain_when_ready(sender=types.SimpleNamespace(app=app))
        assert _queued_tasks(broker_client, queue) == [TaskName.DRAIN_EVENTS.value]
    finally:
        broker_client.delete(queue)


def test_an_eager_app_sends_nothing(app_settings, broker_client):
    queue = f"bk-ready-{uuid.uuid4().hex[:8]}"
    app = make_celery({**app_settings, "celery.broker_url": BROKER, "celery.always_eager": "true",
                       "celery.default_queue": queue}, set_as_current=False)
    app.loader.import_default_modules()
    drain_when_ready(sender=types.SimpleNamespace(app=app))
    assert broker_client.llen(queue) == 0
