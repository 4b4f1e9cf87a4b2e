"""The Celery app, configured from the same ini file as the web tier.

``celery -A workers worker`` (and ``beat``) read the ini named by ``SAAS_CONFIG``
(default ``development.ini``, relative to the current directory) through the
same :func:`saas.config.load_settings` as the web tier, so a missing secret
stops the worker with the same one-line message. Tests build apps from a
settings dict with :func:`make_celery` and never need an ini file.

Tasks carry ids and plain JSON only, run each in its own transaction
(:meth:`BridgekeeperTask.db_session`) and, when sent from a request, leave only
after that request's transaction commits (:meth:`BridgekeeperTask.apply_async`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import plaster
from celery import Celery, Task
from pyramid.threadlocal import get_current_request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from transaction.interfaces import NoTransaction

from saas.config import ConfigurationError, load_settings
from saas.crypto import secret_box_from_settings
from saas.db import engine_from_settings, session_factory
from saas.redis import Keys, redis_from_url

CONFIG_ENV = "SAAS_CONFIG"
DEFAULT_CONFIG = "development.ini"
TASK_MODULES = ("workers.cleanup", "workers.sync", "workers.webhooks")

# Periodic work run by ``celery -A workers beat`` (or ``worker -B``). ``expires``
# drops a run that waited longer than its period, so a stopped worker does not
# come back to a pile of identical jobs.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "drain-events": {
        "task": "workers.sync.drain",
        "schedule": 1.0,
        "options": {"expires": 1.0},
    },
    "deliver-webhooks": {
        "task": "workers.webhooks.deliver",
        "schedule": 1.0,
        "options": {"expires": 1.0},
    },
    "purge-webhook-events": {
        "task": "workers.webhooks.purge",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "purge-expired": {
        "task": "workers.cleanup.purge_expired",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}

# Fail fast instead of hanging when the broker is down: a publish, or the
# first connection of a producer, gives up after a few short retries.
BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 4}


class BridgekeeperCelery(Celery):
    """A Celery app that carries the service settings and a per-process engine."""

    saas_settings: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saas_settings = {}
        self._db: tuple[int, Engine, sessionmaker[Session]] | None = None
        self._db_lock = threading.Lock()
        self._redis: tuple[int, Any] | None = None

    def db_sessionmaker(self) -> sessionmaker[Session]:
        """The session factory of this process, built on first use.

        Keyed by pid: a prefork child must not share the parent's pooled
        connections, so a fork gets an engine of its own.
        """
        pid = os.getpid()
        with self._db_lock:
            if self._db is None or self._db[0] != pid:
                if self._db is not None:
                    self._db[1].dispose(close=False)
                engine = engine_from_settings(self.saas_settings)
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
        request = get_current_request()
        manager = getattr(request, "tm", None) if request is not None else None
        if manager is None:
            return super().apply_async(args, kwargs, **options)
        try:
            current = manager.get()
        except NoTransaction:
            return super().apply_async(args, kwargs, **options)
        current.addAfterCommitHook(self._send_after_commit, args=(args, kwargs), kws=options)
        return None

    def _send_after_commit(self, success: bool, args: Any, kwargs: Any, **options: Any) -> None:
        if success:
            super().apply_async(args, kwargs, **options)


def make_celery(settings: Mapping[str, Any], set_as_current: bool = True) -> BridgekeeperCelery:
    """Build the Celery app from service settings (raw ini strings or loaded).

    Environment overrides are not applied here: the caller passes the settings
    it means (:func:`settings_from_config` merges the environment). Coercing
    again is harmless, so already-loaded settings work too.
    """
    settings = load_settings(settings, environ={})
    broker_url = settings["celery.broker_url"]
    transport_options = dict(BROKER_TRANSPORT_OPTIONS)
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        transport_options.update(REDIS_TRANSPORT_OPTIONS)

    # The web tier's producer-only app (webhook kicks) passes set_as_current=False.
    app = BridgekeeperCelery("bridgekeeper", task_cls=BridgekeeperTask, include=TASK_MODULES,
                             set_as_current=set_as_current)
    app.saas_settings = settings
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=4,
        broker_transport_options=transport_options,
        task_always_eager=settings["celery.always_eager"],
        task_default_queue=settings["celery.default_queue"],
        task_eager_propagates=True,
        # JSON only: ids and plain values on the wire, never pickles.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Tasks are idempotent: acknowledge after the run, redeliver if lost.
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


def settings_from_config(path: str | None = None) -> dict[str, Any]:
    """Load the ini's ``[app:main]`` settings with environment overrides, checked.

    Raises :class:`ConfigurationError` (one line) so the worker exits at start.
    """
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    if "://" not in path and not os.path.isfile(path.split("#", 1)[0]):
        raise ConfigurationError(
            f"bridgekeeper: configuration file not found: {path} (set {CONFIG_ENV})"
        )
    settings = load_settings(plaster.get_settings(path, "app:main"))
    secret_box_from_settings(settings)  # a too-short master key fails here, not in a task
    return settings


_app: BridgekeeperCelery | None = None
_app_lock = threading.Lock()


def get_app() -> BridgekeeperCelery:
    """The process's app, built from the ini on first use."""
    global _app
    with _app_lock:
        if _app is None:
            _app = make_celery(settings_from_config())
        return _app


def __getattr__(name: str) -> Any:
    # ``workers.celery.app`` is built on first access, not at import.
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
