"""Every task on RabbitMQ (``CELERY_BROKER_URL=amqp://…``), with real workers.

A worker in a thread of this process takes the whole chain of work through
the broker: the sync drain and its kicks (logins' events into PostgreSQL),
the webhook the sync raises, a sign-up and the mail it sends, the cleanup.
Worker processes (``celery -A workers worker``, as production starts them)
show what the queue settings promise: a task sent while no worker runs waits
in its durable queue; a task whose worker is SIGKILLed mid-run goes back to
the queue (``acks_late``) and another worker runs it; a beat message past its
``expires`` is dropped by RabbitMQ itself.

Each test names its own deployment queue (tests/rabbitmq.py) and Redis
prefix, so parallel runs share the broker without taking each other's work;
the queues are deleted at the end. Without RabbitMQ the tests fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from celery import _state as celery_state
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun
from kombu import Connection
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from saas.apps.models import App, AppSecret, SecretKind
from saas.broker import long_queue
from saas.config import configure
from saas.crypto import SecretBox
from saas.db import utcnow
from saas.tasks import BEAT_SCHEDULE, BridgekeeperCelery, TaskName, make_celery, send
from saas.tenants.models import Member
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.verify import verify_webhook
from tests.conftest import MASTER_KEY
from tests.flows import CLIENT_REDIRECT, Login
from tests.functional.test_webhooks_support import running_receiver
from tests.integration.test_sync_worker import CELERY, OVERRIDING_ENV, ROOT, stop_group
from tests.live import committed_app
from tests.rabbitmq import (
    AMQP_URL,
    delete_deployment_queues,
    queue_name,
    require_rabbitmq,
    waiting,
)
from tests.waiting import processes, wait_until

pytestmark = pytest.mark.integration

EVENTS_PER_LOGIN = 3  # login.started, login.succeeded, token.issued
PURGE = "workers.cleanup.purge_expired"


@pytest.fixture
def rabbit(app_settings) -> Iterator[dict[str, Any]]:
    """Settings of a deployment on RabbitMQ: its own queue and Redis prefix."""
    require_rabbitmq()
    queue = queue_name("rabbit")
    settings = {**app_settings, "celery.broker_url": AMQP_URL, "celery.default_queue": queue,
                "celery.always_eager": "false",
                "saas.redis_prefix": f"{app_settings['saas.redis_prefix']}:mq:{queue[-12:]}",
                # A run takes one of four shards and kicks another run for the
                # rest: a kick through RabbitMQ on every drain, whatever the timing.
                "saas.sync.stream_shards": "4", "saas.sync.shards_per_run": "1"}
    try:
        yield settings
    finally:
        delete_deployment_queues(queue)


@pytest.fixture
def engine_(rabbit) -> Iterator[Engine]:
    engine = create_engine(rabbit["sqlalchemy.url"])
    yield engine
    engine.dispose()


@pytest.fixture
def live_app(rabbit, engine_) -> Iterator[tuple[App, dict]]:
    with committed_app(rabbit, custom_auth_endpoint="https://tenant.example.com/auth",
                       redirect_uris=[CLIENT_REDIRECT]) as (app, secrets):
        try:
            yield app, secrets
        finally:
            with engine_.begin() as conn:  # the sync's rows have no foreign key to the app
                conn.execute(text("DELETE FROM audit_events WHERE app_id = :app"),
                             {"app": app.app_id})


def _expire_previous_secret(engine: Engine, app: App) -> int:
    """Give the app a previous secret past its grace period; its row id."""
    with Session(engine) as session:
        secret = session.scalar(select(AppSecret).where(
            AppSecret.app_id == app.id, AppSecret.kind == SecretKind.CUSTOM_AUTH))
        secret.previous_ciphertext = SecretBox(MASTER_KEY).encrypt("the secret before")
        secret.previous_valid_until = utcnow() - dt.timedelta(minutes=5)
        session.commit()
        return secret.id


def _previous_cleared(engine: Engine, secret_id) -> bool:
    with Session(engine) as session:
        return session.get(AppSecret, secret_id).previous_ciphertext is None


def _audit_rows(engine: Engine, app: App) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM audit_events WHERE app_id = :app"
                                " AND type <> 'user.created'"), {"app": app.app_id})


# --- a worker thread: every kind of task -------------------------------------

@pytest.fixture
def thread_worker_app(rabbit) -> Iterator[BridgekeeperCelery]:
    """The worker's app on RabbitMQ; the process's Celery state put back after."""
    previous = (celery_state.default_app, celery_state._tls.current_app)
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    # One event per batch: every run that applies one kicks the next.
    app = make_celery({**rabbit, "saas.sync.batch_size": "1"})
    app.conf.update(worker_enable_remote_control=False, worker_hijack_root_logger=False)
    try:
        yield app
    finally:
        celery_state.set_default_app(previous[0])
        celery_state._set_current_app(previous[1])
        root.setLevel(root_level)
        root.handlers[:] = root_handlers
        app.dispose_engine()


def test_every_task_runs_on_rabbitmq(rabbit, live_app, engine_, thread_worker_app,
                                     smtp_server):
    app, secrets = live_app
    worker = thread_worker_app
    box = SecretBox(rabbit["saas.master_key"])
    with running_receiver() as receiver:
        with Session(engine_, expire_on_commit=False) as session:
            _endpoint, hook_secret = create_endpoint(
                session, box, session.get(App, app.id),
                {"url": receiver.url, "events": ["user.created"]})
            session.commit()
        secret_id = _expire_previous_secret(engine_, app)
        wsgi = configure(rabbit).make_wsgi_app()  # a producer on RabbitMQ, as in production
        web = webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "bk.test"})
        logins = 3
        for n in range(logins):
            Login(web, app.app_id, secrets["custom_auth"]).tokens(user_id=f"mq-{n}")
        email = f"mq-{uuid.uuid4().hex[:8]}@example.com"
        form = web.get("/dashboard/signup").forms[0]
        form["tenant_name"], form["email"], form["password"] = "Rabbit", email, "a rabbit pass"
        form.submit(status=200)
        assert waiting(rabbit["celery.default_queue"]) == 1  # the sign-up, queued

        drains: list[str] = []

        def count(sender=None, task_id=None, **_):
            if sender is not None and sender.name == TaskName.DRAIN_EVENTS.value:
                drains.append(task_id)

        task_prerun.connect(count, weak=False)
        try:
            with start_worker(worker, pool="solo", perform_ping_check=False,
                              shutdown_timeout=15):
                send(worker, TaskName.DRAIN_EVENTS)  # the only drain the test sends
                send(worker, TaskName.PURGE_EXPIRED)
                wait_until(lambda: _audit_rows(engine_, app) == logins * EVENTS_PER_LOGIN,
                           "the logins' events in PostgreSQL")
                wait_until(lambda: len(receiver.requests) >= logins, "the user.created hooks")
                (verify,) = smtp_server.mailbox.wait_for(email)
                wait_until(lambda: _previous_cleared(engine_, secret_id), "the cleanup")
        finally:
            task_prerun.disconnect(count)
            wsgi.registry["saas.db_engine"].dispose()
            wsgi.registry["saas.redis"].close()

    # No beat ran: every drain after the first was a kick sent through RabbitMQ.
    assert len(set(drains)) >= 2
    created = {verify_webhook(r.body, r.headers["Bridgekeeper-Signature"], hook_secret)
               ["data"]["external_id"] for r in receiver.requests}
    assert created == {f"mq-{n}" for n in range(logins)}
    assert verify.subject == "Confirm your email address"
    with Session(engine_) as session:
        assert session.scalar(select(Member).where(Member.email == email)) is not None


# --- worker processes: durable queues, redelivery, expiry ---------------------

class Workers:
    """``celery -A workers worker`` processes on the test's ini, and their logs."""

    def __init__(self, settings: dict[str, Any], tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        ini = tmp_path / "worker.ini"
        lines = ["[app:main]", "use = egg:bridgekeeper"]
        ini.write_text("\n".join(lines + [f"{k} = {v}" for k, v in settings.items()]) + "\n")
        self.env = {k: v for k, v in os.environ.items() if k not in OVERRIDING_ENV}
        self.env.update(SAAS_CONFIG=str(ini), PYTHONUNBUFFERED="1")
        self.queue = settings["celery.default_queue"]
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self) -> tuple[subprocess.Popen, Path]:
        n = len(self.started)
        log_path = self.tmp_path / f"worker-{n}.log"
        args = [CELERY, "-A", "workers", "worker", "--loglevel=INFO", "--pool=solo",
                "-n", f"{self.queue}-{n}@%h", "--without-gossip", "--without-mingle"]
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((popen, log_path))
        wait_until(lambda: " ready." in log_path.read_text() or popen.poll() is not None,
                   f"worker {n} ready", progress=processes(popen))
        assert popen.poll() is None, log_path.read_text()
        return popen, log_path

    def stop_all(self) -> None:
        for popen, _log in self.started:
            stop_group(popen)


@pytest.fixture
def workers(rabbit, tmp_path) -> Iterator[Workers]:
    made = Workers(rabbit, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def _task_ids(log: Path, outcome: str) -> list[str]:
    return re.findall(rf"Task {re.escape(PURGE)}\[([0-9a-f-]+)\] {outcome}", log.read_text())


def test_a_task_sent_while_no_worker_runs_waits_in_its_durable_queue(
        rabbit, live_app, engine_, workers):
    first, _log = workers.start()  # declares the queues, as a deployment's worker did
    stop_group(first)
    secret_id = _expire_previous_secret(engine_, live_app[0])
    producer = make_celery(rabbit, set_as_current=False)
    send(producer, TaskName.PURGE_EXPIRED)
    assert waiting(long_queue(rabbit["celery.default_queue"])) == 1
    assert not _previous_cleared(engine_, secret_id)

    _popen, log = workers.start()
    wait_until(lambda: _previous_cleared(engine_, secret_id), "the queued cleanup run")
    assert waiting(long_queue(rabbit["celery.default_queue"])) == 0
    assert len(_task_ids(log, "succeeded")) == 1


def _blocked_by(engine: Engine, holder_pid: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
        ), {"holder": holder_pid}))


def test_a_task_whose_worker_is_killed_runs_again_on_another(
        rabbit, live_app, engine_, workers):
    secret_id = _expire_previous_secret(engine_, live_app[0])
    victim, victim_log = workers.start()
    # Hold the secret's row: the cleanup blocks on it, mid-run, unacknowledged.
    lock = engine_.connect()
    try:
        lock_pid = lock.scalar(text("SELECT pg_backend_pid()"))
        lock.execute(text("SELECT id FROM app_secrets WHERE id = :id FOR UPDATE"),
                     {"id": secret_id})
        send(make_celery(rabbit, set_as_current=False), TaskName.PURGE_EXPIRED)
        wait_until(lambda: _blocked_by(engine_, lock_pid), "the cleanup blocked on the row lock")
        (task_id,) = _task_ids(victim_log, "received")
        assert waiting(long_queue(rabbit["celery.default_queue"])) == 0  # held by the victim
        os.killpg(victim.pid, signal.SIGKILL)
        wait_until(lambda: victim.poll() is not None, "the killed worker's end")
        assert victim.returncode == -signal.SIGKILL
    finally:
        lock.rollback()
        lock.close()
    # The broker saw the connection drop: the unacknowledged task is back in the queue.
    wait_until(lambda: waiting(long_queue(rabbit["celery.default_queue"])) == 1,
               "the task requeued by RabbitMQ")

    _popen, rescuer_log = workers.start()
    wait_until(lambda: _previous_cleared(engine_, secret_id), "the cleanup run again")
    # The very message the victim held, not a new one: the test sent only that.
    assert _task_ids(rescuer_log, "succeeded") == [task_id]


def test_rabbitmq_drops_a_beat_message_past_its_expiry(rabbit):
    """No worker consumes: the expired drain tick is gone from the queue itself."""
    producer = make_celery(rabbit, set_as_current=False)
    entry = BEAT_SCHEDULE["drain-events"]
    stale = producer.send_task(entry["task"], **entry["options"])  # as beat sends it
    fresh = producer.send_task(entry["task"])  # no expiry: stays
    queue = rabbit["celery.default_queue"]
    with Connection(AMQP_URL, connect_timeout=5) as conn:
        channel = conn.default_channel
        wait_until(lambda: _head_id(channel, queue) == fresh.id,
                   "the expired message dropped by the broker", interval=0.2)
    assert stale.id != fresh.id


def _head_id(channel, queue: str) -> str | None:
    """The id of the first message RabbitMQ would deliver (put back unacked)."""
    message = channel.basic_get(queue, no_ack=False)
    if message is None:
        return None
    task_id = message.headers["id"]
    channel.basic_reject(message.delivery_tag, requeue=True)
    return task_id
