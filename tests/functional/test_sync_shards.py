"""The sharded event stream against real Redis and PostgreSQL: where events
land, leases, several drains at once, the legacy stream, per-shard figures.

Each test runs with its own stream layout (own key prefix, N = 1 or 4) put in
the web app's registry, as ``saas.sync.stream_shards`` would configure it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
import zlib
from collections import defaultdict

import pytest
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from saas.audit.models import AuditEvent
from saas.config import ConfigurationError, configure, load_settings
from saas.event_streams import StreamLayout, shard_of
from saas.redis import Keys
from saas.sync.drain import drain
from saas.sync.lease import Lease, lease_key
from saas.sync.shards import leased_shards
from saas.sync.status import sync_status
from saas.sync.stream import EventStream
from saas.tenants.models import Tenant
from saas.users.models import EndUser
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT, Login
from tests.sync_helpers import login_entry


def _layout(registry, shards: int) -> StreamLayout:
    prefix = f"{registry.settings['saas.redis_prefix']}:sh{uuid.uuid4().hex[:8]}"
    return StreamLayout(Keys(prefix), shards)


@pytest.fixture
def layout(request, registry):
    """A layout of ``request.param`` shards (default 4) in the registry, for
    the web app's logins and the test's drains; the previous one restored."""
    layout = _layout(registry, getattr(request, "param", 4))
    client, original = registry["saas.redis"], registry["saas.event_streams"]
    registry["saas.event_streams"] = layout
    yield layout
    registry["saas.event_streams"] = original
    keys = list(client.scan_iter(match=f"{layout.keys.prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def apps_on_every_shard(make, shards: int) -> dict[int, object]:
    """Apps made by ``make()`` until each shard has one (ids are random)."""
    found: dict[int, object] = {}
    for _ in range(200):
        app = make()
        found.setdefault(shard_of(app.app_id, shards), app)
        if len(found) == shards:
            return found
    raise AssertionError("no app id for some shard in 200 tries")


def _all(layout: StreamLayout) -> int:
    return len(layout.named_keys())


def _session_factory(db_connection):
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                        expire_on_commit=False)


# -- the setting ---------------------------------------------------------------


def test_the_setting_defaults_to_one_stream_and_to_16_on_a_cluster(app_settings):
    base = {**app_settings, "redis.url": "redis://127.0.0.1:6379/0"}  # whatever the run's store
    base.pop("saas.sync.stream_shards", None)
    assert load_settings(base, environ={})["saas.sync.stream_shards"] == 1
    cluster = {**base, "redis.url": "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"}
    assert load_settings(cluster, environ={})["saas.sync.stream_shards"] == 16
    assert load_settings(cluster, environ={"SAAS_SYNC_STREAM_SHARDS": "3"})[
        "saas.sync.stream_shards"] == 3
    with pytest.raises(ConfigurationError, match="SAAS_SYNC_STREAM_SHARDS"):
        load_settings({**base, "saas.sync.stream_shards": "0"}, environ={})


def test_the_configured_app_writes_by_its_setting(app_settings):
    registry = configure({**app_settings, "saas.sync.stream_shards": "4"}).registry
    layout = registry["saas.event_streams"]
    assert layout.shards == 4 and layout.keys.prefix == app_settings["saas.redis_prefix"]
    prefix = app_settings["saas.redis_prefix"]
    assert layout.key(3) == f"{prefix}:events:{{s3}}"
    assert layout.legacy == f"{prefix}:events"
    assert shard_of("k3x9a0bz", 4) == zlib.crc32(b"k3x9a0bz") % 4
    single = StreamLayout(Keys(prefix), 1)
    assert single.key(0) == f"{prefix}:events" and single.legacy is None


# -- the login path ----------------------------------------------------------


@pytest.mark.parametrize("layout", [1, 4], indirect=True)
def test_events_of_different_apps_land_on_their_shards(webapp, db, passwords, secret_box,
                                                       registry, layout):
    member = make_member(db, passwords)
    apps = {}

    def make():
        app, secrets = make_app(db, secret_box, member.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                                custom_auth_endpoint="https://tenant.example.com/auth")
        apps[app.app_id] = secrets["custom_auth"]
        return app

    by_shard = apps_on_every_shard(make, layout.shards)
    db.commit()
    for app in by_shard.values():
        Login(webapp, app.app_id, apps[app.app_id]).tokens(user_id="u")

    client = registry["saas.redis"]
    for shard, app in by_shard.items():
        entries = client.xrange(layout.key(shard))
        # login.started, login.succeeded (with the upsert), token.issued: one XADD each
        assert len(entries) == 3
        assert {json.loads(fields[b"event"])["audit"][0]["app_id"]
                for _id, fields in entries} == {app.app_id}
    if layout.legacy:
        assert client.xlen(layout.legacy) == 0


# -- draining every shard --------------------------------------------------------


@pytest.mark.parametrize("layout", [1, 4], indirect=True)
def test_the_drain_empties_every_shard_into_postgresql_exactly_once(
        db, db_connection, passwords, secret_box, registry, layout):
    member = make_member(db, passwords)
    by_shard = apps_on_every_shard(lambda: make_app(db, secret_box, member.tenant_id)[0],
                                   layout.shards)
    db.commit()
    client = registry["saas.redis"]
    for shard, app in by_shard.items():
        for n in range(30):
            client.xadd(layout.key(shard), login_entry(app, f"user-{n}", 1000 + n))
    with leased_shards(client, layout, "test", limit=_all(layout)) as taken:
        assert len(taken.rotation.shards) == layout.shards and not taken.free_left
        result = drain(taken.rotation, _session_factory(db_connection), batch_size=7)
    assert (result.read, result.applied, result.dead_lettered) == (30 * layout.shards,) * 2 + (0,)
    for app in by_shard.values():
        rows = db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.app_id == app.app_id, AuditEvent.type == "login.succeeded"))
        assert rows == 30
    status = sync_status(client, layout)
    assert status["backlog"] == 0 and status["in_flight"] == 0
    assert not any(shard["leased"] for shard in status["shards"])  # given back


def test_a_held_shard_is_left_alone_and_an_expired_lease_is_taken_over(
        db, db_connection, login_app, registry, layout):
    client = registry["saas.redis"]
    key = layout.key_for_app(login_app.app_id)
    client.xadd(key, login_entry(login_app, "stranded", 1000))
    # A worker took the shard, read the entry, and died: its lease stays for its TTL.
    dead = Lease(client, lease_key(key), "dead-worker", ttl_ms=300)
    assert dead.acquire()
    assert len(EventStream(client, layout.keys, "dead-worker", key=key).read_batch(10)) == 1

    with leased_shards(client, layout, "rescuer", limit=_all(layout),
                       reclaim_idle_ms=5) as taken:
        assert key not in {shard.stream.stream for shard in taken.rotation.shards}
        assert len(taken.rotation.shards) == layout.shards - 1
    while client.exists(lease_key(key)):  # Redis expires it after its 300 ms
        time.sleep(0.02)
    with leased_shards(client, layout, "rescuer", limit=_all(layout),
                       reclaim_idle_ms=5) as taken:
        assert key in {shard.stream.stream for shard in taken.rotation.shards}
        assert drain(taken.rotation, _session_factory(db_connection)).applied == 1
    assert db.scalar(select(EndUser.external_id).where(EndUser.app_id == login_app.id)) \
        == "stranded"
    # The dead holder can neither extend nor delete its successor's lease.
    successor = Lease(client, lease_key(key), "successor", ttl_ms=60_000)
    assert successor.acquire()
    dead.release()
    assert client.get(lease_key(key)) == b"successor"
    assert not dead.keep()
    successor.release()
    assert not client.exists(lease_key(key))


def test_a_lease_is_extended_while_its_holder_drains(registry, layout):
    client = registry["saas.redis"]
    lease = Lease(client, lease_key(layout.key(0)), "holder", ttl_ms=400)
    assert lease.acquire()
    deadline = time.monotonic() + 1.2  # three TTLs
    while time.monotonic() < deadline:
        assert lease.keep()  # extends past half its time
        time.sleep(0.05)
    assert client.get(lease.key) == b"holder" and client.pttl(lease.key) > 0
    lease.release()


def test_the_legacy_stream_is_drained_after_switching_from_one_stream_to_four(
        db, db_connection, passwords, secret_box, registry, layout):
    client = registry["saas.redis"]
    member = make_member(db, passwords)
    by_shard = apps_on_every_shard(lambda: make_app(db, secret_box, member.tenant_id)[0], 4)
    db.commit()
    before = StreamLayout(layout.keys, 1)  # the same prefix, N = 1
    for app in by_shard.values():  # written before the switch: the single stream
        client.xadd(before.key_for_app(app.app_id), login_entry(app, "old", 1000))
    for app in by_shard.values():  # and after it: the app's shard
        client.xadd(layout.key_for_app(app.app_id), login_entry(app, "new", 2000))
    status = sync_status(client, layout)
    assert [s["shard"] for s in status["shards"]] == ["0", "1", "2", "3", "legacy"]
    assert status["shards"][-1]["backlog"] == 4 and status["backlog"] == 8

    with leased_shards(client, layout, "test", limit=_all(layout)) as taken:
        assert taken.rotation.shards[0].stream.stream == layout.legacy  # oldest first
        assert drain(taken.rotation, _session_factory(db_connection)).applied == 8
    for app in by_shard.values():
        users = db.scalars(select(EndUser.external_id).where(EndUser.app_id == app.id))
        assert sorted(users) == ["new", "old"]
    assert client.xlen(layout.legacy) == 0
    with leased_shards(client, layout, "test", limit=_all(layout)) as taken:
        # Empty now: no longer taken (nor its lease asked for).
        assert layout.legacy not in {s.stream.stream for s in taken.rotation.shards}


# -- two drains at once --------------------------------------------------------------


@pytest.fixture
def committed_apps(app_settings, layout):
    """One committed app per shard (the concurrent drains commit for real)."""
    engine = create_engine(app_settings["sqlalchemy.url"])
    from saas.crypto import SecretBox
    from saas.passwords import Passwords

    box = SecretBox(app_settings["saas.master_key"])
    with Session(engine, expire_on_commit=False) as session:
        member = make_member(session, Passwords())
        apps = apps_on_every_shard(lambda: make_app(session, box, member.tenant_id)[0],
                                   layout.shards)
        session.commit()
    try:
        yield engine, apps
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_events WHERE tenant_id = :t"),
                               {"t": member.tenant_id})
            connection.execute(delete(Tenant).where(Tenant.id == member.tenant_id))
        engine.dispose()


def test_two_concurrent_drains_never_share_a_shard_and_drain_all_once_in_order(
        registry, layout, committed_apps, monkeypatch):
    engine, apps = committed_apps
    client = registry["saas.redis"]
    per_shard = 120
    for shard, app in apps.items():
        for n in range(per_shard):
            client.xadd(layout.key(shard), login_entry(app, f"u{n % 10}", 1000 + n))

    lock = threading.Lock()
    acks: dict[str, list[tuple[str, bytes]]] = defaultdict(list)  # shard key → (who, id)
    holds: list[tuple[str, str, float, float]] = []  # (shard key, who, from, to)
    original = EventStream.acknowledge

    def acknowledge(self, entry_ids):
        with lock:  # recorded in commit order: each batch is acked after its commit
            acks[self.stream] += [(threading.current_thread().name, i) for i in entry_ids]
        original(self, entry_ids)

    monkeypatch.setattr(EventStream, "acknowledge", acknowledge)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    errors: list[BaseException] = []

    def worker() -> None:
        me = threading.current_thread().name
        try:
            while sync_status(client, layout)["backlog"]:
                with leased_shards(client, layout, me, limit=2, reclaim_idle_ms=60_000) as taken:
                    if not taken.rotation.shards:  # the other drain holds them all
                        time.sleep(0.01)
                        continue
                    start = time.monotonic()
                    drain(taken.rotation, factory, batch_size=15, time_budget=0.2)
                    held = [s.stream.stream for s in taken.rotation.shards]
                    with lock:
                        holds.extend((key, me, start, time.monotonic()) for key in held)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"drain-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    for key in layout.stream_keys()[:layout.shards]:
        ids = [entry_id for _who, entry_id in acks[key]]
        assert len(ids) == per_shard == len(set(ids))  # every entry acknowledged once
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))  # in order
    assert {who for shard in acks.values() for who, _id in shard} == {"drain-0", "drain-1"}
    for key in {h[0] for h in holds}:  # one holder at a time
        spans = sorted((start, end) for k, _who, start, end in holds if k == key)
        assert all(end1 <= start2 for (_s, end1), (start2, _e) in itertools.pairwise(spans))
    with engine.connect() as connection:
        for app in apps.values():
            rows = connection.scalar(text(
                "SELECT count(*) FROM audit_events WHERE app_id = :a AND type = 'login.succeeded'"
            ), {"a": app.app_id})
            assert rows == per_shard
    assert sync_status(client, layout)["backlog"] == 0


# -- figures per shard -------------------------------------------------------------------


def test_readyz_and_metrics_report_each_shard_and_the_totals(webapp, registry, layout):
    client = registry["saas.redis"]
    client.xadd(layout.key(2), {"event": "{}"}, id="1000-0")
    client.xadd(layout.key(2), {"event": "{}"}, id="1000-1")
    client.xadd(layout.legacy, {"event": "{}"})
    ready = webapp.get("/readyz").json["sync"]
    assert ready["backlog"] == 3 and ready["oldest_pending_age_seconds"] > 1_000_000
    by_name = {s["shard"]: s for s in ready["shards"]}
    assert set(by_name) == {"0", "1", "2", "3", "legacy"}
    assert (by_name["2"]["backlog"], by_name["legacy"]["backlog"], by_name["0"]["backlog"]) \
        == (2, 1, 0)
    lease = Lease(client, lease_key(layout.key(1)), "someone", ttl_ms=60_000)
    assert lease.acquire()
    try:
        text_ = webapp.get("/metrics").text
    finally:
        lease.release()
    assert "bridgekeeper_sync_backlog 3\n" in text_  # the total keeps its name
    assert 'bridgekeeper_sync_shard_backlog{shard="2"} 2\n' in text_
    assert 'bridgekeeper_sync_shard_backlog{shard="legacy"} 1\n' in text_
    assert 'bridgekeeper_sync_shard_backlog{shard="0"} 0\n' in text_
    assert 'bridgekeeper_sync_shard_leased{shard="1"} 1\n' in text_
    assert 'bridgekeeper_sync_shard_leased{shard="2"} 0\n' in text_
    assert "# TYPE bridgekeeper_sync_shard_in_flight gauge" in text_
