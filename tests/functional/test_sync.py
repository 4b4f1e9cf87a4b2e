"""The drain against real PostgreSQL and Redis: merges, audit, poison, outages."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from saas.audit.models import AuditEvent
from saas.sync.copy_writer import stage_on_connect
from saas.sync.drain import drain
from saas.sync.parse import parse_entry
from saas.sync.writer import write_batch
from saas.users.models import EndUser, end_user_id
from saas.users.pending import PendingMerges
from tests.flows import Login
from tests.sync_helpers import app_stream, as_read, login_entry


@pytest.fixture
def stream(registry, login_app):
    """The shard of ``login_app``'s events, emptied."""
    return app_stream(registry, login_app.app_id, fresh=True)


@pytest.fixture
def pending(registry):
    return PendingMerges(registry["saas.redis"], registry["saas.redis_keys"])


@pytest.fixture
def session_factory(db_connection):
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                        expire_on_commit=False)


def test_logins_land_merged_with_one_audit_row_per_event(
    webapp, login_app, stream, pending, session_factory, db
):
    secret = login_app.plain_secrets["custom_auth"]
    first = Login(webapp, login_app.app_id, secret).tokens(
        user_id="u1", custom={"plan": "pro", "lang": "en"}, profile={"name": "Ann"})
    Login(webapp, login_app.app_id, secret).tokens(user_id="u1", custom={"lang": "de"})
    result = drain(stream, session_factory)
    assert result.read >= 6 and result.dead_lettered == 0

    user = db.get(EndUser, uuid.UUID(first["user"]["id"]))
    db.refresh(user)
    assert user.external_id == "u1"
    assert user.custom == {"plan": "pro", "lang": "de"} and user.profile == {"name": "Ann"}
    assert user.custom_versions["lang"] > user.custom_versions["plan"]
    types = db.execute(
        select(AuditEvent.type, func.count()).where(AuditEvent.app_id == login_app.app_id)
        .group_by(AuditEvent.type)
    ).all()
    assert dict(types) == {"login.started": 2, "login.succeeded": 2, "token.issued": 2,
                           "user.created": 1}
    assert stream.status()["backlog"] == 0

    # The overlay is kept (it is the /me cache); the first /me merges the
    # stored row into it and marks it complete.
    overlay = pending.read(login_app.app_id, first["user"]["id"])
    assert overlay["custom"] == {"plan": "pro", "lang": "de"} and not overlay["complete"]
    me = webapp.get(f"/v1/apps/{login_app.app_id}/me",
                    headers={"Authorization": "Bearer " + first["access_token"]}).json
    assert me["custom"] == {"plan": "pro", "lang": "de"}
    assert me["created_at"] and me["last_login_at"]
    assert pending.read(login_app.app_id, first["user"]["id"])["complete"]


def test_me_merges_synced_fields_into_a_new_overlay_once_then_reads_redis_only(
    webapp, login_app, stream, pending, session_factory, db, registry
):
    """A returning user whose overlay expired: the first /me merges the stored
    row in; later answers come from Redis alone."""
    secret = login_app.plain_secrets["custom_auth"]
    first = Login(webapp, login_app.app_id, secret).tokens(
        user_id="back", custom={"plan": "pro"}, profile={"name": "Bea"})
    drain(stream, session_factory)
    user_id = first["user"]["id"]
    registry["saas.redis"].delete(pending.keys.app(login_app.app_id, "pending", user_id))

    second = Login(webapp, login_app.app_id, secret).tokens(user_id="back",
                                                            custom={"lang": "fr"})
    assert not pending.read(login_app.app_id, user_id)["complete"]
    headers = {"Authorization": "Bearer " + second["access_token"]}
    me = webapp.get(f"/v1/apps/{login_app.app_id}/me", headers=headers).json
    assert me["custom"] == {"plan": "pro", "lang": "fr"} and me["profile"] == {"name": "Bea"}
    stored = db.get(EndUser, uuid.UUID(user_id))
    assert me["created_at"] == stored.created_at.isoformat()

    # Complete now: /me no longer reads PostgreSQL (a row changed behind its
    # back goes unseen; only the sync writes user data, so this cannot happen).
    stored.custom = {"plan": "changed behind the cache"}
    db.flush()
    again = webapp.get(f"/v1/apps/{login_app.app_id}/me", headers=headers).json
    assert again["custom"] == {"plan": "pro", "lang": "fr"}


def test_same_batch_twice_adds_nothing(login_app, stream, pending, session_factory, db, registry):
    client = registry["saas.redis"]
    entry = login_entry(login_app, "twice", 5000, custom={"k": "v"})
    for _ in range(2):
        client.xadd(stream.stream, entry)  # the same event delivered twice
    drain(stream, session_factory)
    client.xadd(stream.stream, entry)  # and once more in a later batch
    drain(stream, session_factory)
    types = db.scalars(select(AuditEvent.type).where(AuditEvent.app_id == login_app.app_id))
    assert sorted(types) == ["login.succeeded", "user.created"]
    assert db.scalar(select(EndUser.custom).where(EndUser.external_id == "twice")) == {"k": "v"}


def test_a_waiting_drain_takes_up_an_event_that_arrives_mid_run(
    login_app, stream, pending, session_factory, db, registry
):
    """An idle worker's run waits on the stream: an event that arrives while it
    runs lands at once, not at the next scheduled run."""
    outcome = {}

    def run() -> None:
        outcome["result"] = drain(stream, session_factory, time_budget=1.5,
                                  wait_for_events=True)
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    time.sleep(0.3)
    registry["saas.redis"].xadd(stream.stream, login_entry(login_app, "latecomer", 1000))
    while stream.status()["backlog"] and worker.is_alive():
        time.sleep(0.01)
    taken_up = time.monotonic()
    worker.join()

    assert outcome["result"].applied == 1
    assert taken_up < outcome["ended"]  # acknowledged (after commit) before the run's end
    assert outcome["ended"] - started >= 1.4  # the run kept waiting until its budget
    assert db.scalar(select(EndUser.external_id).where(EndUser.app_id == login_app.id)) \
        == "latecomer"


def test_without_waiting_an_empty_stream_ends_the_run_at_once(stream, pending, session_factory):
    started = time.monotonic()
    assert drain(stream, session_factory, time_budget=10.0).read == 0
    assert time.monotonic() - started < 5.0  # half the budget: a busy machine is slow too


def test_poison_is_dead_lettered_and_the_rest_lands(
    login_app, stream, pending, session_factory, db, registry
):
    client = registry["saas.redis"]
    client.xadd(stream.stream, login_entry(login_app, "before", 1000))
    client.xadd(stream.stream, {"event": "{not json"})
    forged = json.loads(login_entry(login_app, "forged", 1000)["event"])
    forged["user"]["user_id"] = str(uuid.uuid4())  # does not derive from the external id
    client.xadd(stream.stream, {"event": json.dumps(forged)})
    orphan = json.loads(login_entry(login_app, "orphan", 1000)["event"])
    orphan["user"]["app_uuid"] = str(uuid.uuid4())  # an app that no longer exists
    orphan["user"]["user_id"] = str(end_user_id(uuid.UUID(orphan["user"]["app_uuid"]), "orphan"))
    client.xadd(stream.stream, {"event": json.dumps(orphan)})
    client.xadd(stream.stream, login_entry(login_app, "after", 2000))

    result = drain(stream, session_factory)
    assert (result.read, result.dead_lettered) == (5, 3)
    landed = set(db.scalars(select(EndUser.external_id).where(EndUser.app_id == login_app.id)))
    assert landed == {"before", "after"}
    status = stream.status()
    assert status["backlog"] == 0 and status["dead_letters"] == 3
    errors = [d["error"] for d in stream.dead_letters()]
    assert any("not JSON" in e for e in errors) and any("derive" in e for e in errors)
    assert any("IntegrityError" in e or "ForeignKey" in e for e in errors)


def test_database_outage_leaves_entries_pending(login_app, stream, pending, registry):
    client = registry["saas.redis"]
    client.xadd(stream.stream, login_entry(login_app, "later", 1000))
    dead_db = sessionmaker(bind=create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}))
    with pytest.raises(OperationalError):
        drain(stream, dead_db)
    status = stream.status()
    assert status["backlog"] == 1 and status["in_flight"] == 1 and status["dead_letters"] == 0


def test_pending_entries_of_a_dead_consumer_are_reclaimed(
    login_app, stream, pending, session_factory, db, registry
):
    client = registry["saas.redis"]
    client.xadd(stream.stream, login_entry(login_app, "orphaned", 1000))
    dead = app_stream(registry, login_app.app_id, "dead-consumer")
    assert len(dead.read_batch(10)) == 1  # read, then the consumer dies
    assert drain(stream, session_factory).read == 0  # not idle long enough yet
    eager = app_stream(registry, login_app.app_id, "rescuer", reclaim_idle_ms=5)
    time.sleep(0.02)  # idle longer than the rescuer's reclaim timeout
    assert drain(eager, session_factory).applied == 1
    assert db.scalar(select(EndUser.external_id).where(EndUser.external_id == "orphaned"))


events = st.lists(
    st.tuples(st.sampled_from(["p", "q"]), st.integers(1000, 1005),
              st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=2)),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events)
def test_any_order_and_repetition_give_identical_rows(login_app, session_factory, db_connection,
                                                       sequence):
    parsed = [
        parse_entry(str(n), as_read(login_entry(login_app, ext, ms, custom=custom,
                                                audit_id=str(uuid.UUID(int=n + 1)))))
        for n, (ext, ms, custom) in enumerate(sequence)
    ]

    def rows_after(batches):
        savepoint = db_connection.begin_nested()
        try:
            for batch in batches:
                with session_factory() as session, session.begin():
                    write_batch(session, batch)
            users = db_connection.execute(
                select(EndUser.external_id, EndUser.custom, EndUser.custom_versions,
                       EndUser.created_at, EndUser.last_login_at)
                .where(EndUser.app_id == login_app.id).order_by(EndUser.external_id)
            ).all()
            audit = db_connection.execute(
                select(AuditEvent.type, AuditEvent.external_id, func.count())
                .where(AuditEvent.app_id == login_app.app_id)
                .group_by(AuditEvent.type, AuditEvent.external_id)
                .order_by(AuditEvent.type, AuditEvent.external_id)
            ).all()
            return [tuple(u) for u in users], [tuple(a) for a in audit]
        finally:
            savepoint.rollback()

    once = rows_after([parsed])
    assert rows_after([parsed, parsed]) == once
    assert rows_after([list(reversed(parsed))]) == once
    assert rows_after([[e] for e in reversed(parsed)]) == once
    logins = {("login.succeeded", ext, n) for ext, n in
              Counter(ext for ext, _ms, _c in sequence).items()}
    created = {("user.created", ext, 1) for ext, _ms, _c in sequence}
    assert set(once[1]) == logins | created  # one row per event, one creation per user


def test_reclaiming_is_looked_at_once_in_a_while_not_on_every_read(
        login_app, stream, registry, monkeypatch):
    """Entries become reclaimable only after reclaim_idle_ms: a reader asks
    for them on its first read, then not again on every read."""
    client = registry["saas.redis"]
    reader = app_stream(registry, login_app.app_id, "reader", reclaim_idle_ms=60_000)
    claims = []
    original = client.xautoclaim
    monkeypatch.setattr(reader.redis, "xautoclaim",
                        lambda *args, **kwargs: claims.append(args) or original(*args, **kwargs))
    client.xadd(stream.stream, login_entry(login_app, "a", 1000))
    assert len(reader.read_batch(10)) == 1
    client.xadd(stream.stream, login_entry(login_app, "b", 1000))
    assert len(reader.read_batch(10)) == 1
    assert len(claims) == 1


def test_worker_connections_get_the_staging_tables_when_they_connect(database_url_for_run):
    """The workers' engine creates the staging tables once per connection
    (not in each batch); a batch rolled back leaves them in place."""
    engine = create_engine(database_url_for_run)
    stage_on_connect(engine)
    exists = text("SELECT to_regclass('pg_temp.bk_sync_users') IS NOT NULL"
                  " AND to_regclass('pg_temp.bk_sync_audit') IS NOT NULL")
    try:
        with engine.connect() as connection:
            assert connection.scalar(exists) is True
            connection.exec_driver_sql("INSERT INTO bk_sync_users (id) VALUES (gen_random_uuid())")
            connection.rollback()  # a batch that failed
            assert connection.scalar(exists) is True
            assert connection.scalar(text("SELECT count(*) FROM bk_sync_users")) == 0
    finally:
        engine.dispose()
