"""Stream shards, leases and their figures on both backends: real Redis and the
embedded development store (whose sync takes every shard under its lease)."""

from __future__ import annotations

import zlib

import pytest

from saas.event_streams import StreamLayout, shard_of
from saas.login_events import AuditRecord, UserUpsert, append_event, event_app_id
from saas.sync.lease import Lease, lease_key
from saas.sync.shards import Rotation, leased_shards
from saas.sync.status import sync_status


@pytest.fixture
def sharded(backend):
    client, keys = backend
    yield client, StreamLayout(keys, 4)
    client.delete(*StreamLayout(keys, 4).stream_keys(),
                  *(lease_key(k) for k in StreamLayout(keys, 4).stream_keys()))


def test_an_event_goes_to_its_apps_shard_in_one_xadd(sharded):
    client, layout = sharded
    for app_id in ("app00001", "app00002", "app00003", "zzzzzzzz"):
        append_event(client, layout, [AuditRecord(type="login.started", outcome="success",
                                                  app_id=app_id)])
    for app_id in ("app00001", "app00002", "app00003", "zzzzzzzz"):
        shard = zlib.crc32(app_id.encode()) % 4
        assert shard_of(app_id, 4) == shard
        assert app_id.encode() in b"".join(
            fields[b"event"] for _id, fields in client.xrange(layout.key(shard)))
    assert sum(client.xlen(key) for key in layout.stream_keys()) == 4


def test_the_shard_follows_the_upsert_else_the_first_audit_record_naming_an_app():
    audit = [AuditRecord(type="x", outcome="success"),
             AuditRecord(type="x", outcome="success", app_id="second")]
    assert event_app_id(audit) == "second"
    user = UserUpsert(app_uuid="u", app_id="mine", user_id="i", external_id="e", login_at_ms=1)
    assert event_app_id(audit, user) == "mine"
    assert event_app_id([AuditRecord(type="x", outcome="success")]) is None
    assert shard_of(None, 4) == 0  # no app: the fixed shard 0


def test_a_lease_is_exclusive_kept_and_given_back_only_by_its_holder(sharded):
    client, layout = sharded
    key = lease_key(layout.key(0))
    first, second = Lease(client, key, "a", ttl_ms=10_000), Lease(client, key, "b", 10_000)
    assert first.acquire() and not second.acquire()
    assert first.keep() and first.held
    second.release()  # not the holder: nothing happens
    assert client.get(key) == b"a"
    first.release()
    assert not client.exists(key) and second.acquire()
    second.release()


def test_runs_take_different_shards_up_to_their_limit(sharded):
    client, layout = sharded
    with leased_shards(client, layout, "one", limit=3) as one:
        assert len(one.rotation.shards) == 3 and one.free_left
        with leased_shards(client, layout, "two", limit=3) as two:
            assert len(two.rotation.shards) == 1 and not two.free_left
            taken = {s.stream.stream for s in one.rotation.shards + two.rotation.shards}
            assert taken == set(layout.stream_keys()[:4])  # legacy is empty: not taken
            status = sync_status(client, layout)
            assert [s["leased"] for s in status["shards"]] == [True] * 4 + [False]
    assert not any(s["leased"] for s in sync_status(client, layout)["shards"])


def test_a_rotation_reads_each_shard_in_turn_and_skips_drained_ones(sharded):
    client, layout = sharded
    for shard in range(4):
        for n in range(3 if shard == 1 else 1):
            client.xadd(layout.key(shard), {"event": f"{shard}-{n}"})
    with leased_shards(client, layout, "reader", limit=4) as taken:
        rotation: Rotation = taken.rotation
        seen = []
        while (got := rotation.read(2)) is not None:
            stream, entries = got
            seen.append((stream.name, len(entries)))
            stream.acknowledge([entry_id for entry_id, _ in entries])
        assert sorted(seen) == [("0", 1), ("1", 1), ("1", 2), ("2", 1), ("3", 1)]
        assert not rotation.more
    assert sync_status(client, layout)["backlog"] == 0


def test_status_adds_up_the_shards_and_reads_a_never_drained_stream(sharded):
    client, layout = sharded
    client.xadd(layout.key(3), {"event": "{}"}, id="1000-0")
    client.xadd(layout.legacy, {"event": "{}"})
    status = sync_status(client, layout)
    assert status["backlog"] == 2 and status["in_flight"] == 0
    assert status["oldest_pending_age_seconds"] > 1_000_000
    assert {s["shard"]: s["backlog"] for s in status["shards"]} == {
        "0": 0, "1": 0, "2": 0, "3": 1, "legacy": 1}
    assert not client.exists(layout.key(0))  # status creates nothing
