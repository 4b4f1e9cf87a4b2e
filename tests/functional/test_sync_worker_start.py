"""The drain task's ties to its worker: a worker that becomes ready drains at
once (``workers.sync.drain_when_ready``; beat's drain comes every few seconds,
so a new worker must not wait for it), a warm shutdown ends a run, and a run
takes as many shards as the worker's slots need to cover them all."""

from __future__ import annotations

import json
import types
import uuid

import pytest
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.solo import TaskPool as SoloPool
from celery.worker import state as worker_state

from saas.tasks import TaskName, make_celery
from workers.sync import _stopping, drain_when_ready, pool_slots, shards_per_run

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


@pytest.mark.parametrize(("streams", "slots", "taken"), [
    (17, 1, 17),   # a solo worker on a cluster (16 shards and the legacy stream): all
    (17, 4, 5),    # four slots: 5 + 5 + 5 + 2, every stream held at once
    (16, 3, 6),
    (1, 8, 1),     # one Redis: the single stream
    (17, None, 4),  # slots unknown: the old default
])
def test_an_unsized_run_takes_its_slots_share_of_the_streams(streams, slots, taken):
    assert shards_per_run(None, streams, slots) == taken
    assert taken * (slots or 1) >= streams or slots is None


def test_the_setting_wins_over_the_slots():
    assert shards_per_run(2, 17, 1) == 2


@pytest.mark.parametrize(("pool", "concurrency", "slots"), [
    (SoloPool, 8, 1),       # solo runs one task at a time, whatever -c says
    ("solo", 1, 1),
    (PreforkPool, 4, 4),
    (PreforkPool, "auto", None),  # resolved after worker_init: not known yet
])
def test_a_workers_slots_come_from_its_pool(pool, concurrency, slots):
    worker = types.SimpleNamespace(pool_cls=pool, concurrency=concurrency)
    assert pool_slots(worker) == slots
