"""The write-behind sync with a real ``celery -A workers worker -B`` process.

Logins go through the web app (WebTest over committed data, no embedded sync);
their events wait in the Redis stream until a real worker process, started
the way production starts it and woken by its own beat every second, drains
them into PostgreSQL. Each test has its own Redis prefix (shared by the web
app and the worker) and its own Celery queue, so parallel runs cannot drain or
consume each other's work.

The worker's ini names the test's queue (``celery.default_queue``): beat's
``drain`` then reaches this worker and nobody else's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import webtest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from saas.config import configure, load_settings
from saas.event_streams import layout_from_settings
from saas.redis import Keys, redis_from_url
from saas.sync.stream import GROUP, EventStream
from tests.flows import CLIENT_REDIRECT, Login
from tests.live import committed_app
from tests.waiting import processes, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CELERY = os.path.join(sys.prefix, "bin", "celery")
UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:1/none"
# Variables that would override the ini (load_settings reads the environment).
OVERRIDING_ENV = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_ALWAYS_EAGER",
    "SAAS_MASTER_KEY", "SAAS_MASTER_KEY_PREVIOUS", "SAAS_PUBLIC_BASE_URL",
    "SAAS_REDIS_PREFIX", "SAAS_SECURE_COOKIES", "SAAS_CONFIG", "CELERY_DEFAULT_QUEUE",
    "CELERY_LOADER", "CELERY_RESULT_BACKEND",
)
EVENTS_PER_LOGIN = 3  # login.started, login.succeeded, token.issued


@dataclass
class Worker:
    popen: subprocess.Popen
    log_path: Path

    @property
    def consumer(self) -> str:
        """Its name in the stream's consumer group (``workers.sync.consumer_name``)."""
        return f"{socket.gethostname()}:{self.popen.pid}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"worker pid {self.popen.pid}, exit status {self.popen.poll()}\n" \
               f"--- log\n{self.log()[-4000:]}"


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def stop_group(popen: subprocess.Popen, graceful: bool = True) -> None:
    """SIGTERM the group we started (warm shutdown, for as long as it makes
    progress), then SIGKILL what is left."""
    if graceful and popen.poll() is None:
        _signal_group(popen, signal.SIGTERM)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: popen.poll() is not None, "warm shutdown",
                       progress=processes(popen))
    _signal_group(popen, signal.SIGKILL)
    wait_until(lambda: popen.poll() is not None, "the end of a killed worker")


class SyncEnv:
    """One test's world: a committed app, a Redis prefix, a queue, web apps, workers."""

    def __init__(self, app_settings: dict[str, Any], tmp_path: Path, app, secrets) -> None:
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"{app_settings['saas.redis_prefix']}:sw:{tag}"
        self.queue = f"bk-test-sync-{tag}"
        self.settings = {**app_settings, "saas.redis_prefix": self.prefix}
        self.tmp_path = tmp_path
        self.app = app
        self.secret = secrets["custom_auth"]
        self.keys = Keys(self.prefix)
        self.redis = redis_from_url(app_settings["redis.url"])  # the store (maybe a cluster)
        self.broker = redis.Redis.from_url(app_settings["celery.broker_url"],
                                           socket_connect_timeout=2)
        self.engine = create_engine(app_settings["sqlalchemy.url"])
        self.workers: list[Worker] = []
        self._web_registries: list[Any] = []

    # --- web tier ---------------------------------------------------------

    def web(self, **overrides: str) -> webtest.TestApp:
        wsgi = configure({**self.settings, **overrides}).make_wsgi_app()
        self._web_registries.append(wsgi.registry)
        return webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "bk.test"})

    def login(self, web: webtest.TestApp, user_id: str, **claims: Any) -> dict:
        """authorize → tenant token bound to the state → callback → token exchange."""
        return Login(web, self.app.app_id, self.secret).tokens(user_id=user_id, **claims)

    # --- worker processes ---------------------------------------------------

    def start_worker(self, *, reclaim_idle_ms: int = 30_000,
                     database_url: str | None = None) -> Worker:
        n = len(self.workers)
        ini = self.tmp_path / f"worker-{n}.ini"
        settings = {
            **self.settings,
            "sqlalchemy.url": database_url or self.settings["sqlalchemy.url"],
            "celery.always_eager": "false",
            "saas.sync.reclaim_idle_ms": str(reclaim_idle_ms),
            "celery.default_queue": self.queue,
        }
        lines = ["[app:main]", "use = egg:bridgekeeper"]
        lines += [f"{name} = {value}" for name, value in settings.items()]
        ini.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if k not in OVERRIDING_ENV}
        env.update(
            SAAS_CONFIG=str(ini),
            PYTHONUNBUFFERED="1",
        )
        # No -Q: like production, the worker consumes the ini's queues (the
        # default one and its ".long" sibling for webhooks and mail).
        args = [
            CELERY, "-A", "workers", "worker", "-B",
            "-s", str(self.tmp_path / f"beat-schedule-{n}"),
            "--loglevel=INFO", "-n", f"{self.queue}-{n}@%h",
            "--concurrency=1", "--pool=solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        log_path = self.tmp_path / f"worker-{n}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(popen, log_path)
        self.workers.append(worker)
        self.wait_for(lambda: " ready." in worker.log(), f"worker {n} ready")
        return worker

    def wait_for(self, predicate: Callable[[], Any], what: str) -> Any:
        """Poll until ``predicate`` is true, as long as the live workers make
        progress (CPU time); fail (with the logs) at once if one of them died."""
        live = [w for w in self.workers if w.popen.poll() is None]

        def done() -> Any:
            if result := predicate():
                return result
            for worker in live:
                if worker.popen.poll() is not None:
                    pytest.fail(f"worker exited while waiting for {what}: {worker.describe()}")
            return None

        return wait_until(done, what, progress=processes(*(w.popen for w in live)),
                          interval=0.1,
                          describe=lambda: "\n".join(w.describe() for w in self.workers))

    # --- observations -------------------------------------------------------

    def stream(self) -> EventStream:
        """The shard of the app's events (``saas.sync.stream_shards`` as the
        web app and the workers read it)."""
        layout = layout_from_settings(load_settings(self.settings))
        return EventStream(self.redis, self.keys, "test-observer",
                           key=layout.key_for_app(self.app.app_id))

    def pending_by_consumer(self) -> dict[str, int]:
        stream = self.stream()
        stream.ensure_group()  # the workers' group, from the start of the stream
        summary = self.redis.xpending(stream.stream, GROUP)
        return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"] or []}

    # The login path's audit rows; the sync adds a user.created row per new
    # user on top of them (see created_users).
    def audit_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT type, count(*) FROM audit_events"
                " WHERE app_id = :app AND type <> 'user.created' GROUP BY type"
            ), {"app": self.app.app_id}).all()
        return {type_: count for type_, count in rows}

    def audit_total(self) -> tuple[int, int]:
        """(rows, distinct ids) of the app's login-path audit events."""
        with self.engine.connect() as conn:
            return tuple(conn.execute(text(
                "SELECT count(*), count(DISTINCT id) FROM audit_events"
                " WHERE app_id = :app AND type <> 'user.created'"
            ), {"app": self.app.app_id}).one())

    def created_users(self) -> list[str]:
        """External ids of the user.created audit rows, sorted (repeats kept)."""
        with self.engine.connect() as conn:
            return sorted(conn.scalars(text(
                "SELECT external_id FROM audit_events"
                " WHERE app_id = :app AND type = 'user.created'"
            ), {"app": self.app.app_id}))

    def users(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT external_id, id, custom, profile, custom_versions, profile_versions,"
                " created_at, last_login_at FROM end_users WHERE app_id = :app"
            ), {"app": self.app.id}).mappings().all()
        return {row["external_id"]: dict(row) for row in rows}

    def synced(self, audit_rows: int) -> bool:
        status = self.stream().status()
        return (status["backlog"] == 0 and status["in_flight"] == 0
                and self.audit_total()[0] == audit_rows)

    # --- teardown ---------------------------------------------------------------

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop_group(worker.popen)

    def close(self) -> None:
        self.stop_workers()
        for registry in self._web_registries:
            registry["saas.db_engine"].dispose()
            registry["saas.redis"].close()
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE app_id = :app"),
                         {"app": self.app.app_id})
        self.engine.dispose()
        self._delete_keys(self.redis, f"{self.prefix}:*")
        self._delete_keys(self.broker, f"*{self.queue}*")
        self._forget_unacked()
        self.redis.close()
        self.broker.close()

    @staticmethod
    def _delete_keys(client, pattern: str) -> None:
        for key in list(client.scan_iter(match=pattern, count=1000)):
            client.delete(key)  # one by one: on a cluster the keys' slots differ

    def _forget_unacked(self) -> None:
        """Drop the kombu 'unacked' records of our queue (a SIGKILLed worker leaves one)."""
        for tag, raw in self.broker.hscan_iter("unacked", count=1000):
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key == self.queue:
                self.broker.hdel("unacked", tag)
                self.broker.zrem("unacked_index", tag)


@pytest.fixture
def sync_env(app_settings, redis_client, tmp_path) -> Iterator[SyncEnv]:
    # Fails (never skips) without PostgreSQL or Redis: both fixtures above check.
    with committed_app(app_settings, custom_auth_endpoint="https://tenant.example.com/auth",
                       redirect_uris=[CLIENT_REDIRECT]) as (app, secrets):
        env = SyncEnv(app_settings, tmp_path, app, secrets)
        try:
            yield env
        finally:
            # Workers stop before committed_app deletes the tenant (no late inserts).
            env.close()


def _assert_beat_reached(worker: Worker) -> None:
    """The worker ran drains and its own beat sent them (the test sends no task).

    A run waits on the stream until its time budget is spent, so it reports
    success up to a beat period after its events landed; and a drain left queued
    by an earlier worker of the same test may do the work before this
    worker's beat has sent its first tick, so both are waited for.
    """
    done = re.compile(r"Task workers\.sync\.drain\[[0-9a-f-]+\] succeeded")
    sent = "Sending due task drain-events (workers.sync.drain)"
    wait_until(lambda: sent in (log := worker.log()) and done.search(log),
               "a drain sent by the worker's beat, and one finished",
               progress=lambda: len(worker.log()), describe=worker.describe)


def test_logins_land_merged_with_one_audit_row_per_event(sync_env):
    env = sync_env
    worker = env.start_worker()
    web = env.web()

    ann = env.login(web, "ann", custom={"plan": "pro", "lang": "en"}, profile={"name": "Ann"})
    env.login(web, "ann", custom={"lang": "de", "beta": None}, profile={"city": "Berlin"})
    env.login(web, "bob", custom={"plan": "free"})
    env.login(web, "cy", profile={"name": "Cy"})
    logins = 4

    env.wait_for(lambda: env.synced(logins * EVENTS_PER_LOGIN), "drained logins")
    _assert_beat_reached(worker)  # no test sends anything: beat's drain came to us

    assert env.audit_counts() == {
        "login.started": logins, "login.succeeded": logins, "token.issued": logins,
    }
    assert env.audit_total() == (logins * EVENTS_PER_LOGIN,) * 2
    users = env.users()
    assert set(users) == {"ann", "bob", "cy"}
    assert env.created_users() == ["ann", "bob", "cy"]
    assert str(users["ann"]["id"]) == ann["user"]["id"]
    # Field by field: lang from the second login, plan from the first, beta stored as null.
    assert users["ann"]["custom"] == {"plan": "pro", "lang": "de", "beta": None}
    assert users["ann"]["profile"] == {"name": "Ann", "city": "Berlin"}
    versions = users["ann"]["custom_versions"]  # ordered by login time, whatever the encoding
    assert versions["lang"] > versions["plan"] and versions["beta"] == versions["lang"]
    assert users["ann"]["last_login_at"] > users["ann"]["created_at"]
    assert users["bob"]["custom"] == {"plan": "free"} and users["bob"]["profile"] == {}
    assert users["cy"]["custom"] == {} and users["cy"]["profile"] == {"name": "Cy"}

    status = env.stream().status()
    assert status["backlog"] == 0 and status["dead_letters"] == 0
    # The overlay stays as the /me cache; this first /me completes it from the row.
    assert env.redis.exists(env.keys.app(env.app.app_id, "pending", ann["user"]["id"]))
    me = web.get(f"/v1/apps/{env.app.app_id}/me",
                 headers={"Authorization": "Bearer " + ann["access_token"]}).json
    assert me["custom"] == {"plan": "pro", "lang": "de", "beta": None}
    assert me["profile"] == {"name": "Ann", "city": "Berlin"}


def _lock_row(env: SyncEnv, user_id) -> tuple[Connection, int]:
    """Lock the user's row in a transaction left open; returns it and its backend pid."""
    conn = env.engine.connect()
    pid = conn.scalar(text("SELECT pg_backend_pid()"))
    conn.execute(text("SELECT id FROM end_users WHERE id = :id FOR UPDATE"), {"id": user_id})
    return conn, pid


def _blocked_by(env: SyncEnv, holder_pid: int) -> list[int]:
    """The backends waiting for a lock the holder has (whatever their statement)."""
    with env.engine.connect() as conn:
        return list(conn.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
        ), {"holder": holder_pid}))


def _backend_alive(env: SyncEnv, pid: int) -> bool:
    with env.engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}))


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(sync_env):
    env = sync_env
    web = env.web()
    env.login(web, "held", custom={"a": 1, "b": 1}, profile={"n": "first"})

    first = env.start_worker()
    env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN), "first login drained")
    stop_group(first.popen)  # gracefully: the next batch must go to the victim alone
    held_id = env.users()["held"]["id"]

    lock, lock_pid = _lock_row(env, held_id)
    try:
        env.login(web, "held", custom={"b": 2, "c": 3})
        for name in ("k1", "k2", "k3"):
            env.login(web, name, custom={"who": name})
        new_events = 4 * EVENTS_PER_LOGIN
        assert env.stream().status()["backlog"] == new_events

        victim = env.start_worker()
        # The victim read the whole backlog and is stuck inside its batch transaction.
        env.wait_for(lambda: env.pending_by_consumer().get(victim.consumer) == new_events,
                     "the batch in flight for the victim")
        [orphan] = env.wait_for(lambda: _blocked_by(env, lock_pid),
                                "the victim's batch blocked on the row lock")
        assert env.stream().status()["in_flight"] == new_events
        stop_group(victim.popen, graceful=False)  # SIGKILL the whole group, mid-batch
        assert victim.popen.returncode == -signal.SIGKILL
    finally:
        lock.rollback()
        lock.close()

    # The killed worker's backend gets the lock, finds its client gone and rolls back:
    # nothing of the batch was committed, nothing was acknowledged.
    env.wait_for(lambda: not _backend_alive(env, orphan), "the orphaned backend to end")
    assert env.audit_total()[0] == EVENTS_PER_LOGIN
    assert set(env.users()) == {"held"}
    assert env.users()["held"]["custom"] == {"a": 1, "b": 1}
    status = env.stream().status()
    assert status["backlog"] == new_events and status["in_flight"] == new_events
    assert env.pending_by_consumer() == {victim.consumer: new_events}

    rescuer = env.start_worker(reclaim_idle_ms=500)
    env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN + new_events), "reclaimed batch drained")
    assert "Traceback" not in rescuer.log(), rescuer.describe()

    assert env.audit_counts() == {"login.started": 5, "login.succeeded": 5, "token.issued": 5}
    assert env.audit_total() == (EVENTS_PER_LOGIN + new_events,) * 2
    users = env.users()
    assert set(users) == {"held", "k1", "k2", "k3"}
    assert env.created_users() == ["held", "k1", "k2", "k3"]  # each created once
    assert users["held"]["custom"] == {"a": 1, "b": 2, "c": 3}
    assert users["held"]["profile"] == {"n": "first"}
    for name in ("k1", "k2", "k3"):
        assert users[name]["custom"] == {"who": name}
    status = env.stream().status()
    assert status == {**status, "backlog": 0, "in_flight": 0, "dead_letters": 0}
    assert env.pending_by_consumer() == {}


def test_logins_survive_a_postgres_outage_and_sync_afterwards(sync_env):
    env = sync_env
    good = env.web()
    before = env.login(good, "pat", custom={"plan": "pro", "lang": "en"})
    # That login cached the app's settings in Redis: the hot path needs nothing else.
    assert env.redis.exists(env.keys.app(env.app.app_id, "config"))

    # PostgreSQL is unreachable for the web tier and for the worker running meanwhile.
    stranded = env.start_worker(database_url=UNREACHABLE_DB)
    down = env.web(**{"sqlalchemy.url": UNREACHABLE_DB})
    during = {
        "pat": env.login(down, "pat", custom={"lang": "fr"}, profile={"name": "Pat"}),
        "quinn": env.login(down, "quinn", custom={"plan": "free"}),
        "rae": env.login(down, "rae", profile={"name": "Rae"}),
    }
    assert during["pat"]["user"]["id"] == before["user"]["id"]  # uuid5: no database needed
    expected = {
        "pat": ({"plan": "pro", "lang": "fr"}, {"name": "Pat"}),
        "quinn": ({"plan": "free"}, {}),
        "rae": ({}, {"name": "Rae"}),
    }
    for name, tokens in during.items():
        me = down.get(f"/v1/apps/{env.app.app_id}/me",
                      headers={"Authorization": "Bearer " + tokens["access_token"]}, status="*")
        assert me.status_code == 200, f"/me with PostgreSQL down: {me.status}: {me.text[:300]}"
        assert (me.json["custom"], me.json["profile"]) == expected[name]  # the overlay
        assert me.json["external_id"] == name
    events = 4 * EVENTS_PER_LOGIN

    # The stranded worker took every entry, failed to commit, acknowledged nothing
    # and dead-lettered nothing: an outage is not a poison event.
    env.wait_for(lambda: env.pending_by_consumer() == {stranded.consumer: events},
                 "every entry in flight for the stranded worker")
    env.wait_for(lambda: "OperationalError" in stranded.log(), "the worker's failed commit")
    status = env.stream().status()
    assert status["backlog"] == events and status["dead_letters"] == 0
    assert env.audit_total()[0] == 0
    stop_group(stranded.popen)

    worker = env.start_worker(reclaim_idle_ms=500)
    env.wait_for(lambda: env.synced(events), "outage backlog drained")
    _assert_beat_reached(worker)

    assert env.audit_counts() == {"login.started": 4, "login.succeeded": 4, "token.issued": 4}
    assert env.audit_total() == (events,) * 2
    users = env.users()
    assert set(users) == {"pat", "quinn", "rae"}
    for name, (custom, profile) in expected.items():
        assert (users[name]["custom"], users[name]["profile"]) == (custom, profile), name
    assert env.stream().status()["dead_letters"] == 0
    assert env.pending_by_consumer() == {}
