"""The drain task's ties to its worker: a worker that becomes ready drains at
once (``workers.sync.drain_when_ready``; beat's drain comes every few seconds,
so a new worker must not wait for it), and a warm shutdown ends a run."""

from __future__ import annotations

import json
import types
import uuid

import pytest
from celery.worker import state as worker_state

from saas.tasks import TaskName, make_celery
from workers.sync import _stopping, drain_when_ready

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


@pytest.mark.parametrize(("flag", "stopping"),
                         [(None, False), (False, False), (0, True), (1, True)])
def test_a_warm_shutdown_is_seen_whatever_its_exit_code(monkeypatch, flag, stopping):
    """Celery's warm shutdown sets ``should_stop`` to the exit code: 0 (EX_OK)
    for a clean stop, which must not read as "not stopping"."""
    monkeypatch.setattr(worker_state, "should_stop", flag)
    assert _stopping() is stopping
