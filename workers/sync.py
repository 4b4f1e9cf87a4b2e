"""The write-behind sync task: drain login events from Redis into PostgreSQL.

Beat runs it every second. A run drains batches for up to ``TIME_BUDGET``
seconds, waiting on the stream when it is empty (so an event is taken up
within milliseconds of its login, not at the next tick); if the backlog
outlasts that, it sends itself again at once (the
"kick"), so a growing backlog is worked off without waiting for the next tick
and without any Celery publish on the login path.
"""

from __future__ import annotations

import logging
import os
import socket

import psycopg
from celery import shared_task
from sqlalchemy.exc import InterfaceError, OperationalError

from saas.sync import drain as sync_drain
from saas.sync.stream import EventStream
from saas.tasks import BridgekeeperTask, TaskName

log = logging.getLogger(__name__)
TIME_BUDGET = 0.9


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def event_stream(app) -> EventStream:
    settings = app.saas_settings
    return EventStream(
        app.redis_client(), app.redis_keys(), consumer_name(),
        reclaim_idle_ms=int(settings.get("saas.sync.reclaim_idle_ms", 30_000)),
    )


@shared_task(name=TaskName.DRAIN_EVENTS.value, base=BridgekeeperTask, bind=True)
def drain(self: BridgekeeperTask) -> dict[str, int]:
    """Drain for up to ``TIME_BUDGET`` seconds; kick another run if work is left."""
    app = self.app
    stream = event_stream(app)
    batch_size = int(app.saas_settings.get("saas.sync.batch_size",
                                           sync_drain.DEFAULT_BATCH_SIZE))
    try:
        result = sync_drain.drain(stream, app.db_sessionmaker(), batch_size,
                                  time_budget=TIME_BUDGET,
                                  wait_for_events=not app.conf.task_always_eager)
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        # The entries stay pending and are retried: one line, not a traceback a second.
        log.warning("sync: database unavailable (%s); will retry", exc.__class__.__name__)
        return {"read": 0, "applied": 0, "dead_lettered": 0}
    if result.more and not app.conf.task_always_eager:
        self.apply_async()  # the kick: work the backlog off without waiting for beat
    totals = {"read": result.read, "applied": result.applied,
              "dead_lettered": result.dead_lettered}
    if totals["read"]:
        log.info("sync: drained", extra=totals)
    return totals
