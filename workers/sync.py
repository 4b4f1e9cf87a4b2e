"""The write-behind sync task: drain login events from Redis into PostgreSQL.

Beat runs it every ``saas.tasks.DRAIN_PERIOD`` seconds, and a worker runs it
as soon as it is ready (``worker_ready``). A run takes up to
``saas.sync.shards_per_run`` stream shards (unset: every shard divided among
this worker's slots, ``shards_per_run``) under their leases
(saas/sync/shards.py) and drains them for up to ``RUN_BUDGET`` seconds —
until just before beat's next run takes over — waiting on them when they are
empty (so an event is taken up within milliseconds of its login), and lets a
short batch linger up to ``saas.sync.linger_ms`` for more events (one
transaction per linger under live load, not one per login). Two kicks — the
task sending itself again at once — keep every shard covered without any
Celery publish on the login path:

* at the start, when free shards were left over, so another worker takes
  them (N shards spread over the workers within milliseconds of a tick);
* at the end, when a shard's backlog outlasted the run, so a growing backlog
  is worked off without waiting for the next tick.

Runs of several seconds, not one per second: each of beat's ticks and each
task start cost the worker more CPU than draining a hundred events
(docs/performance.md, "Sync under live load"). A worker asked to shut down
ends its run within ``STOP_CHECK_MS`` (the entries it has not acknowledged
stay pending for the next run).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from typing import Any

import psycopg
from celery import shared_task
from celery.signals import worker_init, worker_ready
from celery.worker import state as worker_state
from sqlalchemy.exc import InterfaceError, OperationalError

from saas.event_streams import StreamLayout, layout_from_settings
from saas.sync import drain as sync_drain
from saas.sync.shards import leased_shards
from saas.tasks import DRAIN_PERIOD, BridgekeeperTask, TaskName, send

log = logging.getLogger(__name__)
# Ends just before beat's next run: the hand-over takes milliseconds (PATIENCE).
RUN_BUDGET = DRAIN_PERIOD - 0.1
# A run that finds every shard held keeps trying for its whole budget (a
# SET NX per shard every 50 ms): the holder may be a kicked run, off beat's
# cadence, that ends mid-period, and the shards must not then wait for the
# next tick.
PATIENCE = RUN_BUDGET


# This worker's task slots (its pool's concurrency), known from worker_init,
# which runs before a prefork pool forks; None outside a worker.
_slots: int | None = None
FALLBACK_SHARDS_PER_RUN = 4  # no slot count known (a task run outside a worker)


def shards_per_run(configured: int | None, streams: int, slots: int | None) -> int:
    """How many of the ``streams`` one run takes: the setting when given;
    else every stream divided among the worker's ``slots``, so one worker
    started with no sizing drains every shard at once (a solo worker takes
    them all) instead of taking turns with runs that last seconds. An
    operator running many workers sets ``saas.sync.shards_per_run`` to spread
    the shards (docs/operations.md, "Stream shards")."""
    if configured is not None:
        return configured
    if slots is None:
        return min(FALLBACK_SHARDS_PER_RUN, streams)
    return max(1, math.ceil(streams / slots))


def pool_slots(worker: Any) -> int | None:
    """A worker's task slots: one for the solo pool (whatever ``-c`` says),
    else its concurrency once known (``auto`` is resolved later: unknown)."""
    pool = worker.pool_cls
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    if "solo" in name:
        return 1
    concurrency = worker.concurrency
    return concurrency if isinstance(concurrency, int) and concurrency > 0 else None


@worker_init.connect
def remember_slots(sender: Any = None, **_kwargs: Any) -> None:
    global _slots
    if sender is not None:
        _slots = pool_slots(sender)


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def stream_layout(app) -> StreamLayout:
    return layout_from_settings(app.saas_settings)


def _stopping() -> bool:
    """The worker was asked to shut down (warm): end the run early (its
    leases are given back; what it read and did not commit stays pending)."""
    # Celery sets the exit code, 0 for a clean stop: compare by identity.
    flag = worker_state.should_stop
    return flag is not None and flag is not False


@shared_task(name=TaskName.DRAIN_EVENTS.value, base=BridgekeeperTask, bind=True)
def drain(self: BridgekeeperTask) -> dict[str, int]:
    """Drain the shards taken for up to ``RUN_BUDGET`` seconds; kick another
    run if shards were left free or work is left."""
    app = self.app
    settings = app.saas_settings
    eager = app.conf.task_always_eager
    batch_size = int(settings.get("saas.sync.batch_size", sync_drain.DEFAULT_BATCH_SIZE))
    linger_ms = int(settings.get("saas.sync.linger_ms", sync_drain.DEFAULT_LINGER_MS))
    layout = stream_layout(app)
    # Inline (eager) runs have nobody to hand shards to: they take them all.
    streams = len(layout.named_keys())
    configured = settings.get("saas.sync.shards_per_run")
    limit = streams if eager else shards_per_run(
        int(configured) if configured is not None else None, streams, _slots)
    deadline = time.monotonic() + RUN_BUDGET
    try:
        with leased_shards(
            app.redis_client(), layout, consumer_name(), limit=limit,
            reclaim_idle_ms=int(settings.get("saas.sync.reclaim_idle_ms", 30_000)),
            patience=0.0 if eager else PATIENCE,
        ) as taken:
            if not taken.rotation.shards:
                return {"read": 0, "applied": 0, "dead_lettered": 0}  # all held by others
            if taken.free_left and not eager:
                self.apply_async()  # the fan-out kick: another worker takes the rest
            result = sync_drain.drain(taken.rotation, app.db_sessionmaker(), batch_size,
                                      time_budget=max(deadline - time.monotonic(), 0.0),
                                      wait_for_events=not eager, linger_ms=linger_ms,
                                      stop=None if eager else _stopping)
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        # The entries stay pending and are retried: one line, not a traceback per run.
        log.warning("sync: database unavailable (%s); will retry", exc.__class__.__name__)
        return {"read": 0, "applied": 0, "dead_lettered": 0}
    if result.more and not eager:
        self.apply_async()  # the kick: work the backlog off without waiting for beat
    totals = {"read": result.read, "applied": result.applied,
              "dead_lettered": result.dead_lettered}
    if totals["read"]:
        log.info("sync: drained", extra=totals)
    return totals


@worker_ready.connect
def drain_when_ready(sender: Any = None, **_kwargs: Any) -> None:
    """A worker that becomes ready drains at once, not at beat's next tick."""
    app = getattr(sender, "app", None)
    if app is None or app.conf.task_always_eager or TaskName.DRAIN_EVENTS.value not in app.tasks:
        return
    try:
        send(app, TaskName.DRAIN_EVENTS)
    except Exception:  # the broker is not there yet: beat's next tick drains
        log.warning("sync: could not send the first drain run", exc_info=True)
