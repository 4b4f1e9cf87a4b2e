"""The task system inside the app: the Celery factory, the task base, sending by name.

As in warehouse's ``warehouse/tasks.py``, the application owns its Celery app;
the ``workers`` package holds the task functions and the ``celery -A workers``
entry point, and imports this module, never the other way. The web tier and
the sync send tasks by name (:class:`TaskName`), so they never import a task.

Tasks carry ids and plain JSON only, run each in its own transaction
(:meth:`BridgekeeperTask.db_session`) and, when sent from a request, leave only
after that request's transaction commits (:meth:`BridgekeeperTask.apply_async`,
:func:`send_after_commit`). Tests build apps from a settings dict with
:func:`make_celery` and never need an ini file.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from celery import Celery, Task
from pyramid.threadlocal import get_current_request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from transaction.interfaces import NoTransaction

from saas.broker import celery_conf
from saas.config import load_settings
from saas.db import engine_from_settings, session_factory
from saas.redis import Keys, redis_from_url

log = logging.getLogger(__name__)


class TaskName(enum.StrEnum):
    """The tasks' names on the wire. Queued messages and beat entries carry these,
    so a rename must keep the old name registered until a deploy has drained."""

    DRAIN_EVENTS = "workers.sync.drain"
    DELIVER_WEBHOOKS = "workers.webhooks.deliver"
    PURGE_WEBHOOK_EVENTS = "workers.webhooks.purge"
    PURGE_EXPIRED = "workers.cleanup.purge_expired"
    MAINTAIN_AUDIT = "workers.partitions.maintain_audit"
    SEND_MAIL = "workers.mail.send"
    REQUEST_RESET = "workers.accounts.request_reset"
    SIGN_UP = "workers.accounts.sign_up"


# The modules that define the tasks, loaded by Celery by name (a worker at
# start; an eager app when it first runs a task inline).
TASK_MODULES = ("workers.accounts", "workers.cleanup", "workers.mail", "workers.partitions",
                "workers.sync", "workers.webhooks")

# Periodic work run by ``celery -A workers beat`` (or ``worker -B``). ``expires``
# drops a run that waited longer than its period, so a stopped worker does not
# come back to a pile of identical jobs (on RabbitMQ it is also the message's
# TTL: the broker drops the stale tick itself).
#
# The drain and webhook delivery run every few seconds, not every second: a
# drain run waits on its streams for the whole period anyway, webhooks are
# sent on a kick right after the commit that stages them, and each of beat's
# ticks costs the worker more CPU than draining a hundred events (measured:
# docs/performance.md, "Sync under live load").
DRAIN_PERIOD = 5.0  # seconds; workers.sync runs until just before the next tick
WEBHOOK_PERIOD = 5.0  # seconds; retries come due at most this late (base 15 s)
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "drain-events": {
        "task": TaskName.DRAIN_EVENTS.value,
        "schedule": DRAIN_PERIOD,
        "options": {"expires": DRAIN_PERIOD},
    },
    "deliver-webhooks": {
        "task": TaskName.DELIVER_WEBHOOKS.value,
        "schedule": WEBHOOK_PERIOD,
        "options": {"expires": WEBHOOK_PERIOD},
    },
    "purge-webhook-events": {
        "task": TaskName.PURGE_WEBHOOK_EVENTS.value,
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "purge-expired": {
        "task": TaskName.PURGE_EXPIRED.value,
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    # Audit partitions made months ahead, expired ones dropped (saas.audit.partitions).
    "maintain-audit": {
        "task": TaskName.MAINTAIN_AUDIT.value,
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}

# Tasks that may run long: they wait on other hosts (webhook receivers, SMTP
# servers) or sweep tables. They go to the long queue (saas.broker), so they
# never take the slot the sync drain needs.
LONG_TASKS = frozenset({
    TaskName.DELIVER_WEBHOOKS, TaskName.SEND_MAIL,
    TaskName.PURGE_WEBHOOK_EVENTS, TaskName.PURGE_EXPIRED, TaskName.MAINTAIN_AUDIT,
})


class BridgekeeperCelery(Celery):
    """A Celery app that carries the service settings and a per-process engine."""

    saas_settings: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saas_settings = {}
        self._db: tuple[int, Engine, sessionmaker[Session]] | None = None
        self._db_lock = threading.Lock()
        self._redis: tuple[int, Any] | None = None
        self._sessions: Callable[[], sessionmaker[Session]] | None = None
        # Called with each engine this app builds (the workers set it up for
        # the sync: workers.celery); this module knows no task's needs.
        self.on_engine: Callable[[Engine], None] | None = None

    def share_sessions(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        """Run tasks on the session factory ``sessions()`` returns (the web
        tier's own, for the tasks an eager app runs inline) instead of an engine
        of this app's."""
        self._sessions = sessions

    def db_sessionmaker(self) -> sessionmaker[Session]:
        """The session factory of this process, built on first use.

        Keyed by pid: a prefork child must not share the parent's pooled
        connections, so a fork gets an engine of its own.
        """
        if self._sessions is not None:
            return self._sessions()
        pid = os.getpid()
        with self._db_lock:
            if self._db is None or self._db[0] != pid:
                if self._db is not None:
                    self._db[1].dispose(close=False)
                engine = engine_from_settings(self.saas_settings)
                if self.on_engine is not None:
                    self.on_engine(engine)
                self._db = (pid, engine, session_factory(engine))
            return self._db[2]

    def redis_client(self):
        """This process's Redis client (the same store the web tier writes)."""
        pid = os.getpid()
        with self._db_lock:
            if self._redis is None or self._redis[0] != pid:
                self._redis = (pid, redis_from_url(self.saas_settings["redis.url"]))
            return self._redis[1]

    def redis_keys(self) -> Keys:
        return Keys(self.saas_settings["saas.redis_prefix"])

    def dispose_engine(self) -> None:
        """Close this process's pooled connections (tests, worker shutdown)."""
        with self._db_lock:
            if self._db is not None and self._db[0] == os.getpid():
                self._db[1].dispose()
            self._db = None


class BridgekeeperTask(Task):
    """Base of every task: one transaction per run, sent only after commit."""

    @contextmanager
    def db_session(self) -> Iterator[Session]:
        """A session for this run: committed if the block succeeds, else rolled back."""
        session = self.app.db_sessionmaker()()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Send now, or, inside a request's transaction, once it commits.

        A task sent before commit could run before its rows exist, or for rows
        that a rollback then removes. Deferred sends return ``None``.
        """
        current = _request_transaction(get_current_request())
        if current is None:
            return super().apply_async(args, kwargs, **options)
        current.addAfterCommitHook(self._send_after_commit, args=(args, kwargs), kws=options)
        return None

    def _send_after_commit(self, success: bool, args: Any, kwargs: Any, **options: Any) -> None:
        if success:
            super().apply_async(args, kwargs, **options)


def _request_transaction(request) -> Any:
    """The request's open transaction (pyramid_tm), or None outside one."""
    manager = getattr(request, "tm", None) if request is not None else None
    if manager is None:
        return None
    try:
        return manager.get()
    except NoTransaction:
        return None


def make_celery(settings: Mapping[str, Any], set_as_current: bool = True) -> BridgekeeperCelery:
    """Build the Celery app from service settings (raw ini strings or loaded).

    The one factory of the worker's app (``workers.celery``) and the web tier's
    producer (:func:`includeme`). Environment overrides are not applied here:
    the caller passes the settings it means. Coercing again is harmless, so
    already-loaded settings work too.
    """
    settings = load_settings(settings, environ={})
    # The web tier's producer-only app passes set_as_current=False.
    app = BridgekeeperCelery("bridgekeeper", task_cls=BridgekeeperTask, include=TASK_MODULES,
                             set_as_current=set_as_current)
    app.saas_settings = settings
    app.conf.update(
        celery_conf(settings["celery.broker_url"], settings["celery.default_queue"],
                    (name.value for name in LONG_TASKS)),
        task_always_eager=settings["celery.always_eager"],
        task_eager_propagates=True,
        # JSON only: ids and plain values on the wire, never pickles.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Every task is safe to run twice (docs/operations.md, "Broker", says
        # why for each): acknowledge after the run, redeliver if lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_prefetch_multiplier=1,
        task_time_limit=300,
        task_soft_time_limit=240,
        # Nothing reads results back, so no result backend is needed.
        task_ignore_result=True,
        result_backend=None,
        beat_schedule=BEAT_SCHEDULE,
        timezone="UTC",
        enable_utc=True,
    )
    return app


def send(app: Celery, name: TaskName, *args: Any) -> Any:
    """Send the task called ``name`` with ``args`` (plain JSON values), now.

    By name, so the sender needs no task module. An eager app (development,
    tests) runs it inline instead, as ``Task.apply_async`` would: Celery loads
    the task modules by name for that.
    """
    if app.conf.task_always_eager:
        app.loader.import_default_modules()
        return app.tasks[name.value].apply(args=args)
    return app.send_task(name.value, args=args)


def send_after_commit(request, name: TaskName, *args: Any) -> None:
    """Send ``name`` with the web tier's app once the request's transaction
    commits (at once outside one); never on abort.

    A send that fails (the broker is down) is logged, never raised: the change
    is committed by then. Every argument-less task sent this way is also run
    by beat; a mail (``SEND_MAIL``) is not, and its page offers to send again.
    """
    app = request.registry["saas.celery"]
    current = _request_transaction(request)
    if current is None:
        _send_logged(app, name, args)
        return
    current.addAfterCommitHook(lambda committed: committed and _send_logged(app, name, args))


def _send_logged(app: Celery, name: TaskName, args: tuple[Any, ...] = ()) -> None:
    try:
        send(app, name, *args)
    except Exception:
        # Never the arguments: a mail's sealed message is no business of a log.
        log.warning("tasks: could not send %s", name.value, exc_info=True)


def includeme(config) -> None:
    """The web tier's Celery app: a producer only (the workers consume)."""
    registry = config.registry
    app = make_celery(registry.settings, set_as_current=False)
    # Tasks it runs inline (eager: development, tests) use the requests' own
    # database sessions, looked up when they run (tests swap the factory).
    app.share_sessions(lambda: registry["saas.db_sessionmaker"])
    registry["saas.celery"] = app
