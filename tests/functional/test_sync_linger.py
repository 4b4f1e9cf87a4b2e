"""Batching by size or time (``linger_ms``) against real Redis and PostgreSQL.

These tests assert which entries went together in which batch (each batch is
acknowledged once per shard, after its commit), never how long anything took:
lingers and budgets are far longer than the test, so a batch that waited when
it should not have shows up as a drain that stops making progress.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from saas.config import ConfigurationError, load_settings
from saas.sync.drain import DrainResult, drain
from saas.sync.lease import Lease, lease_key
from saas.sync.shards import leased_shards
from saas.sync.stream import EventStream
from saas.users.models import EndUser
from tests.sync_helpers import app_stream, login_entry
from tests.waiting import wait_until

FOREVER_MS = 600_000  # a linger or budget no test lives to see the end of


@pytest.fixture
def stream(registry, login_app):
    return app_stream(registry, login_app.app_id, fresh=True)


@pytest.fixture
def session_factory(db_connection):
    return sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                        expire_on_commit=False)


@pytest.fixture
def batches(monkeypatch) -> list[list[bytes]]:
    """The entry ids of each acknowledgement, in order (one per batch and shard)."""
    acknowledged: list[list[bytes]] = []
    original = EventStream.acknowledge

    def acknowledge(self, entry_ids):
        acknowledged.append(list(entry_ids))
        original(self, entry_ids)

    monkeypatch.setattr(EventStream, "acknowledge", acknowledge)
    return acknowledged


class Run:
    """A drain in a thread; ``result`` waits for it as long as it makes progress."""

    def __init__(self, stream_or_rotation, session_factory, **options) -> None:
        self.outcome: dict = {}
        self.progress = lambda: None
        self.thread = threading.Thread(target=self._run,
                                       args=(stream_or_rotation, session_factory, options))
        self.thread.start()

    def _run(self, streams, session_factory, options) -> None:
        try:
            self.outcome["result"] = drain(streams, session_factory, **options)
        except BaseException as exc:  # reported by the test thread
            self.outcome["error"] = exc

    def wait_for(self, predicate, what: str) -> None:
        """Wait until ``predicate()`` while the drain runs; a drain that ended
        first fails the test at once, with its error if it had one."""
        def done():
            if predicate():
                return True
            if not self.thread.is_alive():
                error = self.outcome.get("error")
                raise AssertionError(f"the drain ended before {what}: "
                                     f"{error!r}" if error else f"the drain ended before {what}")
            return False

        wait_until(done, what)

    def result(self, progress=None) -> DrainResult:
        wait_until(lambda: not self.thread.is_alive(), "end of the drain",
                   progress=progress)
        self.thread.join()
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["result"]


def _in_flight(stream: EventStream, count: int):
    return lambda: stream.status()["in_flight"] == count


def _add(client, stream: EventStream, app, name: str, entry_id: str = "*") -> bytes:
    return client.xadd(stream.stream, login_entry(app, name, 1000), id=entry_id)


def test_a_short_batch_waits_for_more_entries_and_goes_once_full(
        login_app, stream, session_factory, registry, batches, db):
    client = registry["saas.redis"]
    first = _add(client, stream, login_app, "first")
    run = Run(stream, session_factory, batch_size=3, max_batches=1, wait_for_events=True,
              time_budget=FOREVER_MS / 1000, linger_ms=FOREVER_MS)
    run.wait_for(_in_flight(stream, 1), "the first entry read")
    second = _add(client, stream, login_app, "second")  # arrives while the batch lingers
    run.wait_for(_in_flight(stream, 2), "the second entry read into the same batch")
    assert batches == []  # nothing committed yet: the batch is short
    third = _add(client, stream, login_app, "third")
    # The batch is full now: it goes at once, long before its linger is over
    # (a drain that went on waiting would stall here and fail).
    result = run.result(progress=lambda: stream.status()["backlog"])
    assert (result.read, result.applied) == (3, 3)
    assert batches == [[first, second, third]]
    landed = set(db.scalars(select(EndUser.external_id).where(EndUser.app_id == login_app.id)))
    assert landed == {"first", "second", "third"}


def test_without_a_linger_each_read_is_committed_at_once(
        login_app, stream, session_factory, registry, batches):
    client = registry["saas.redis"]
    run = Run(stream, session_factory, batch_size=3, max_batches=2, wait_for_events=True,
              time_budget=FOREVER_MS / 1000, linger_ms=0)
    first = _add(client, stream, login_app, "first")
    run.wait_for(lambda: batches, "the first entry committed on its own")
    second = _add(client, stream, login_app, "second")
    assert run.result().read == 2
    assert batches == [[first], [second]]


@pytest.mark.parametrize(("old", "count", "sizes"), [(False, 10, [5, 5]), (True, 12, [5, 5, 2])],
                         ids=["full batches", "entries older than the linger"])
def test_a_backlog_never_waits(login_app, stream, session_factory, registry, batches,
                               old, count, sizes):
    """Full batches go at once; so does a short batch whose first entry was
    appended longer than the linger ago (a backlog's tail, say)."""
    client = registry["saas.redis"]
    added = [_add(client, stream, login_app, f"u{n}", f"1000-{n + 1}" if old else "*")
             for n in range(count)]
    run = Run(stream, session_factory, batch_size=5, max_batches=len(sizes),
              wait_for_events=True, time_budget=FOREVER_MS / 1000, linger_ms=FOREVER_MS)
    result = run.result(progress=lambda: stream.status()["backlog"])
    assert result.read == count
    assert [len(batch) for batch in batches] == sizes
    assert [entry for batch in batches for entry in batch] == added


def test_a_linger_ends_with_the_run_and_commits_what_it_gathered(
        login_app, stream, session_factory, registry, batches):
    client = registry["saas.redis"]
    only = _add(client, stream, login_app, "only")
    result = drain(stream, session_factory, batch_size=100, wait_for_events=True,
                   time_budget=0.5, linger_ms=FOREVER_MS)
    assert (result.read, result.applied) == (1, 1)
    assert batches == [[only]]
    assert stream.status()["backlog"] == 0


def test_a_lingering_batch_keeps_its_lease(login_app, session_factory, registry, batches,
                                           monkeypatch):
    client, layout = registry["saas.redis"], registry["saas.event_streams"]
    key = layout.key_for_app(login_app.app_id)
    client.delete(key)
    extended = []
    original = Lease.keep

    def keep(self):
        before = self._trusted_until
        kept = original(self)
        if self._trusted_until > before:
            extended.append(self.key)
        return kept

    monkeypatch.setattr(Lease, "keep", keep)
    with leased_shards(client, layout, "lingerer", limit=len(layout.named_keys()),
                       ttl_ms=3000) as taken:
        # Only the app's shard is read: one lease to keep per pause, however
        # many shards the store has (16 on a cluster) and however busy the machine.
        taken.rotation.shards[:] = [s for s in taken.rotation.shards if s.stream.stream == key]
        (shard,) = taken.rotation.shards
        stream = shard.stream
        first = _add(client, stream, login_app, "first")
        run = Run(taken.rotation, session_factory, batch_size=2, max_batches=1,
                  wait_for_events=True, time_budget=FOREVER_MS / 1000, linger_ms=FOREVER_MS)
        run.wait_for(_in_flight(stream, 1), "the first entry read")
        # Three extensions: the linger has lasted longer than the lease's TTL.
        run.wait_for(lambda: extended.count(lease_key(key)) >= 3, "the lease extended")
        token = client.get(lease_key(key)).decode()
        assert token.startswith("lingerer:") and run.thread.is_alive() and batches == []
        second = _add(client, stream, login_app, "second")
        assert run.result().read == 2
    assert batches == [[first, second]]


def test_a_linger_never_outlives_its_lease(login_app, session_factory, registry, batches):
    """A lease lost mid-linger ends the linger: what was read is committed, and
    the shard is no longer read."""
    client, layout = registry["saas.redis"], registry["saas.event_streams"]
    key = layout.key_for_app(login_app.app_id)
    client.delete(key)
    with leased_shards(client, layout, "loser", limit=len(layout.named_keys()),
                       ttl_ms=3000) as taken:
        # Only the app's shard is read (the others' leases are held all the same).
        taken.rotation.shards[:] = [s for s in taken.rotation.shards if s.stream.stream == key]
        (shard,) = taken.rotation.shards
        first = _add(client, shard.stream, login_app, "first")
        run = Run(taken.rotation, session_factory, batch_size=10, wait_for_events=True,
                  time_budget=FOREVER_MS / 1000, linger_ms=FOREVER_MS)
        run.wait_for(_in_flight(shard.stream, 1), "the first entry read")
        client.set(lease_key(key), "thief", px=60_000)  # the lease is someone else's now
        # The drain ends by itself: no shard left to linger on or wait for.
        result = run.result()
        assert not taken.rotation.shards
    assert (result.read, result.applied) == (1, 1)
    assert batches == [[first]]
    assert client.get(lease_key(key)) == b"thief"  # given back: never a successor's
    client.delete(lease_key(key))


def test_the_setting_defaults_to_200_ms_and_is_bounded(app_settings):
    assert load_settings(app_settings, environ={})["saas.sync.linger_ms"] == 200
    assert load_settings({**app_settings, "saas.sync.linger_ms": "0"},
                         environ={})["saas.sync.linger_ms"] == 0
    with pytest.raises(ConfigurationError, match="linger_ms"):
        load_settings({**app_settings, "saas.sync.linger_ms": "5000"}, environ={})


def test_a_light_load_tops_its_batch_up_once_at_the_end_of_the_linger(
        login_app, stream, session_factory, registry, batches, monkeypatch):
    """One entry in a batch of 1000: at that rate the batch cannot fill within
    the linger, so the linger sleeps it out and reads once, not every slice."""
    client = registry["saas.redis"]
    top_ups = []
    original = EventStream.read_batch

    def read_batch(self, count, block_ms=None, reclaim=True):
        if not reclaim:
            top_ups.append(count)
        return original(self, count, block_ms, reclaim)

    monkeypatch.setattr(EventStream, "read_batch", read_batch)
    only = _add(client, stream, login_app, "only")
    result = drain(stream, session_factory, batch_size=1000, max_batches=1,
                   wait_for_events=True, time_budget=FOREVER_MS / 1000, linger_ms=300)
    assert result.read == 1
    assert batches == [[only]]
    assert top_ups == [999]


def test_a_stop_ends_a_waiting_run(login_app, stream, session_factory, registry, batches):
    """A worker asked to shut down: the run stops waiting and returns what it did."""
    client = registry["saas.redis"]
    stopping = threading.Event()
    run = Run(stream, session_factory, batch_size=10, wait_for_events=True,
              time_budget=FOREVER_MS / 1000, linger_ms=0, stop=stopping.is_set)
    first = _add(client, stream, login_app, "first")
    run.wait_for(lambda: batches, "the first entry committed")
    stopping.set()
    result = run.result()  # long before the budget: the stop was seen
    assert (result.read, result.applied) == (1, 1)
    assert batches == [[first]]
