"""The write-behind sync under server faults, with real ``celery worker -B`` processes.

* **PostgreSQL killed -9, stopped or frozen** (a private cluster from
  ``initdb``/``pg_ctl``): logins of a cached app go on, ``/me`` answers from
  the overlay, the running worker retries, and once the server is back every
  user merge and audit event lands exactly once.
* **The store's Redis killed -9** under a running worker and restarted
  (AOF): entries applied but not acknowledged are applied again, harmlessly.
* **The Celery broker restarted** under a running worker (a private
  ``redis-server`` as broker, the store being another Redis: the two may be
  separate instances): every event still lands exactly once.
* **The same batch delivered twice**: a second worker with a 1 ms reclaim
  timeout takes over entries that the first is still committing; both commit
  them, and nothing is doubled.

The worker plumbing (one Redis prefix and Celery queue per test, worker
processes, observations) is ``SyncEnv`` of ``test_sync_worker.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text

from saas.sync.stream import GROUP
from tests.conftest import alembic_config
from tests.flows import CLIENT_REDIRECT
from tests.integration.test_sync_worker import (
    EVENTS_PER_LOGIN,
    UNREACHABLE_DB,
    SyncEnv,
    stop_group,
)
from tests.live import committed_app
from tests.servers import PostgresServer, private_postgres, private_redis

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@contextlib.contextmanager
def sync_env_for(settings, tmp_path) -> Iterator[SyncEnv]:
    with committed_app(settings, custom_auth_endpoint="https://tenant.example.com/auth",
                       redirect_uris=[CLIENT_REDIRECT]) as (app, secrets):
        env = SyncEnv(settings, tmp_path, app, secrets)
        try:
            yield env
        finally:
            env.close()


def _me(web, env: SyncEnv, tokens: dict) -> dict:
    response = web.get(f"/v1/apps/{env.app.app_id}/me",
                       headers={"Authorization": "Bearer " + tokens["access_token"]}, status="*")
    assert response.status_code == 200, response.text[:300]
    return response.json


def _bring_back(server: PostgresServer, fault: str) -> None:
    if fault == "pause":
        server.resume()
    else:
        server.start()


@pytest.mark.parametrize("fault", ["kill", "stop", "pause"])
def test_postgres_server_down_logins_go_on_and_land_once_it_is_back(
        app_settings, redis_client, tmp_path, fault):
    with private_postgres() as server:
        command.upgrade(alembic_config(server.url), "head")
        settings = {**app_settings, "sqlalchemy.url": server.url}
        with sync_env_for(settings, tmp_path) as env:
            env.start_worker(reclaim_idle_ms=1000)
            web = env.web()
            before = env.login(web, "pat", custom={"plan": "pro", "lang": "en"})
            env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN), "the first login synced")
            env.engine.dispose()

            getattr(server, fault)()
            assert fault == "pause" or not server.answers()
            started = time.monotonic()  # readiness fails fast, even on a frozen server
            ready = web.get("/readyz", status="*")
            assert time.monotonic() - started < 6
            assert ready.status_int == 503 and ready.json["failing"] == ["postgres"]
            cold = env.web()  # a process started during the outage: cache only
            during = {
                "pat": env.login(web, "pat", custom={"lang": "fr"}, profile={"name": "Pat"}),
                "quinn": env.login(cold, "quinn", custom={"plan": "free"}),
                "rae": env.login(web, "rae", profile={"name": "Rae"}),
            }
            assert during["pat"]["user"]["id"] == before["user"]["id"]
            expected = {"pat": ({"plan": "pro", "lang": "fr"}, {"name": "Pat"}),
                        "quinn": ({"plan": "free"}, {}), "rae": ({}, {"name": "Rae"})}
            if fault != "pause":  # an incomplete /me cache reads PostgreSQL; a frozen one hangs
                for name in during:
                    me = _me(cold, env, during[name])
                    assert (me["custom"], me["profile"]) == expected[name]
                # The running worker fails its batch and keeps everything pending.
                env.wait_for(lambda: "database unavailable" in env.workers[0].log(),
                             "the worker to meet the outage")
            assert env.stream().status()["dead_letters"] == 0

            _bring_back(server, fault)
            events = 4 * EVENTS_PER_LOGIN
            env.wait_for(lambda: env.synced(events), "the outage's logins synced")

            assert env.audit_counts() == {"login.started": 4, "login.succeeded": 4,
                                          "token.issued": 4}
            assert env.audit_total() == (events, events)  # no doubles
            users = env.users()
            assert set(users) == set(expected)
            assert env.created_users() == ["pat", "quinn", "rae"]  # each created once
            for name, (custom, profile) in expected.items():
                assert (users[name]["custom"], users[name]["profile"]) == (custom, profile)
            status = env.stream().status()
            assert status["dead_letters"] == 0 and status["in_flight"] == 0
            env.stop_workers()


def test_me_during_a_postgres_outage_keeps_synced_fields(app_settings, redis_client, tmp_path):
    """A user whose earlier login is already in PostgreSQL logs in again while
    it is down: /me still shows the synced fields (the overlay is kept as the
    user's cache), not the new login's alone."""
    with sync_env_for(app_settings, tmp_path) as env:
        web = env.web()
        env.login(web, "pat", custom={"plan": "pro", "lang": "en"}, profile={"name": "Pat"})
        env.start_worker()
        env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN), "the first login synced")
        env.stop_workers()

        down = env.web(**{"sqlalchemy.url": UNREACHABLE_DB})
        tokens = env.login(down, "pat", custom={"lang": "fr"})
        me = _me(down, env, tokens)
        assert (me["custom"], me["profile"]) == ({"plan": "pro", "lang": "fr"}, {"name": "Pat"})


def test_broker_restarted_under_a_running_worker_loses_and_doubles_nothing(
        app_settings, redis_client, tmp_path):
    with private_redis(tmp_path) as broker:
        # The broker is its own Redis; the store stays the shared one.
        settings = {**app_settings, "celery.broker_url": broker.url}
        with sync_env_for(settings, tmp_path) as env:
            worker = env.start_worker()
            web = env.web()
            env.login(web, "a1", custom={"n": 1})
            env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN), "the first login synced")

            broker.kill()
            for name in ("a1", "b2", "c3"):  # the login path never needs the broker
                env.login(web, name, custom={"n": 2})
            broker.start()
            events = 4 * EVENTS_PER_LOGIN
            env.wait_for(lambda: env.synced(events), "the logins synced after the restart")
            assert worker.popen.poll() is None  # the same worker, reconnected
            assert env.audit_total() == (events, events)
            assert env.audit_counts() == {"login.started": 4, "login.succeeded": 4,
                                          "token.issued": 4}
            assert {name: row["custom"] for name, row in env.users().items()} == {
                "a1": {"n": 2}, "b2": {"n": 2}, "c3": {"n": 2}}
            assert env.created_users() == ["a1", "b2", "c3"]
            env.stop_workers()


def test_store_killed_under_a_running_worker_loses_and_doubles_nothing(
        app_settings, redis_client, tmp_path):
    """The store (a private redis-server with AOF) is killed -9 while a worker
    drains it and restarted: entries committed but not yet acknowledged are
    applied again, which adds nothing; nothing is lost."""
    with private_redis(tmp_path) as store:
        settings = {**app_settings, "redis.url": store.url}
        with sync_env_for(settings, tmp_path) as env:
            env.redis.close()
            env.redis = store.client()
            env.start_worker(reclaim_idle_ms=1000)
            web = env.web()
            names = [f"s{n}" for n in range(6)]
            for name in names[:4]:
                env.login(web, name, custom={"phase": 1})
            store.kill()  # whatever the worker was doing
            store.start()
            for name in names[2:]:
                env.login(web, name, custom={"phase": 2})
            events = 8 * EVENTS_PER_LOGIN
            env.wait_for(lambda: env.synced(events), "every login synced after the crash")
            assert env.audit_total() == (events, events)
            assert env.audit_counts() == {"login.started": 8, "login.succeeded": 8,
                                          "token.issued": 8}
            assert {name: row["custom"]["phase"] for name, row in env.users().items()} == {
                "s0": 1, "s1": 1, "s2": 2, "s3": 2, "s4": 2, "s5": 2}
            assert env.created_users() == names
            assert env.stream().status()["dead_letters"] == 0
            env.stop_workers()


def _waiting_for_locks(env: SyncEnv) -> int:
    with env.engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"))


def test_the_same_batch_delivered_twice_lands_once(app_settings, redis_client, tmp_path):
    with sync_env_for(app_settings, tmp_path) as env:
        web = env.web()
        env.login(web, "held", custom={"a": 1, "b": 1})
        setup = env.start_worker()
        env.wait_for(lambda: env.synced(EVENTS_PER_LOGIN), "the first login synced")
        stop_group(setup.popen)  # the next batch must go to the first worker whole
        held_id = env.users()["held"]["id"]

        lock = env.engine.connect()  # holds the user's row: the next batch blocks on it
        lock.execute(text("SELECT id FROM end_users WHERE id = :id FOR UPDATE"),
                     {"id": held_id})
        try:
            env.login(web, "held", custom={"b": 2, "c": 3})
            for name in ("d1", "d2"):
                env.login(web, name, custom={"who": name})
            batch = 3 * EVENTS_PER_LOGIN
            first = env.start_worker()
            env.wait_for(lambda: env.pending_by_consumer().get(first.consumer) == batch,
                         "the batch in flight for the first worker")
            env.wait_for(lambda: _waiting_for_locks(env) >= 1, "the first worker blocked")

            second = env.start_worker(reclaim_idle_ms=1)  # takes the batch over at once
            env.wait_for(lambda: env.pending_by_consumer().get(second.consumer) == batch,
                         "the batch delivered again, to the second worker")
            env.wait_for(lambda: _waiting_for_locks(env) >= 2, "both workers in the batch")
            delivered = env.redis.xpending_range(env.stream().stream, GROUP, "-", "+", batch)
            assert {entry["times_delivered"] for entry in delivered} == {2}
        finally:
            lock.rollback()
            lock.close()

        events = EVENTS_PER_LOGIN + batch
        env.wait_for(lambda: env.synced(events), "the doubly delivered batch synced")
        assert env.audit_total() == (events, events)
        assert env.audit_counts() == {"login.started": 4, "login.succeeded": 4,
                                      "token.issued": 4}
        users = env.users()
        assert env.created_users() == ["d1", "d2", "held"]  # the batch's twice: once each
        assert users["held"]["custom"] == {"a": 1, "b": 2, "c": 3}
        assert {users[n]["custom"]["who"] for n in ("d1", "d2")} == {"d1", "d2"}
        assert env.stream().status()["dead_letters"] == 0
        for worker in (first, second):
            assert "Traceback" not in worker.log(), worker.describe()
