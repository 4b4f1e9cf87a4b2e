"""Draining the event stream: read a batch, commit it in one transaction, then
acknowledge.

Poison entries (invalid, or refused by the database, e.g. for an app deleted
since the login) are dead-lettered one by one, so they never block the events
behind them. A database outage raises: nothing is acknowledged and the entries
are reclaimed later.

``drain`` overlaps the work: while one batch is in the database (a writer
thread; psycopg releases the GIL while it waits), the next one is read,
validated and turned into COPY text. Batches still commit one at a time, in
order, and each is acknowledged only after its own commit.

It drains one stream, or the shards a run holds (``saas.sync.shards``): one
batch of each in turn, each entry acknowledged on its own shard's stream.

Batches go by size *or* time. A run that waits for events (the worker's) and
has a ``linger_ms`` does not commit a short batch at once: it gathers more
new entries from every held shard (``Rotation.linger``) until ``batch_size``
wait or ``linger_ms`` passed since the batch's first entry was appended (its
stream id's time, so entries that already waited that long — a backlog's
tail, reclaimed ones — go at once). Under live load that makes one
transaction per linger instead of one per wake-up, i.e. per login; a full
batch (a backlog) never waits. The linger ends early at the run's deadline
and when no held lease is left. One batch may then hold several shards'
entries: one transaction, each shard's entries acknowledged on its stream.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from saas.sync.parse import ParsedEvent, PoisonEvent, parse_entry
from saas.sync.shards import MIN_WAIT_MS, Rotation
from saas.sync.stream import EventStream, entry_time_ms, now_ms
from saas.sync.writer import PreparedBatch, apply_batch, is_postgres, prepare_batch

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 2000
DEFAULT_LINGER_MS = 200  # saas.sync.linger_ms
WRITER_SWITCH_INTERVAL = 0.0005  # seconds; see _short_gil_turns
STOP_CHECK_MS = 1000  # a waiting run with a ``stop`` asks it at least this often
# Errors that come from the data of one event, not from the database's health
# (an outage or a missing migration must leave the entries pending instead).
# The COPY path raises psycopg's own errors, the generic path SQLAlchemy's.
_REFUSED = (IntegrityError, DataError, psycopg.errors.IntegrityError, psycopg.errors.DataError)


@dataclass(frozen=True)
class DrainResult:
    read: int
    applied: int
    dead_lettered: int
    more: bool = False  # the last batch was full: the backlog may go on


Entries = list[tuple[bytes, dict]]


@dataclass
class _Work:
    groups: list[tuple[EventStream, Entries]]  # the entries, by the shard they came from
    parsed: list[tuple[EventStream, dict, ParsedEvent]]
    poison: list[tuple[EventStream, bytes, dict, str]]
    batch: PreparedBatch


def _prepare(reads: list[tuple[EventStream, Entries]], postgres: bool) -> _Work:
    by_stream: dict[int, tuple[EventStream, Entries]] = {}
    for stream, entries in reads:  # one acknowledgement per shard
        by_stream.setdefault(id(stream), (stream, []))[1].extend(entries)
    groups = list(by_stream.values())
    parsed: list[tuple[EventStream, dict, ParsedEvent]] = []
    poison: list[tuple[EventStream, bytes, dict, str]] = []
    for stream, entries in groups:
        for entry_id, fields in entries:
            try:
                parsed.append((stream, fields, parse_entry(entry_id.decode(), fields)))
            except PoisonEvent as exc:
                poison.append((stream, entry_id, fields, str(exc)))
    batch = prepare_batch([event for _stream, _fields, event in parsed], postgres)
    return _Work(groups, parsed, poison, batch)


def _linger_until(first_ms: int, linger_ms: int, deadline: float) -> float:
    """The monotonic time a short batch may wait until: ``linger_ms`` after its
    first entry was appended (``first_ms``, by the entry id: Redis' clock), never
    more than ``linger_ms`` from now (clocks differ), never past the run's deadline."""
    age_ms = now_ms() - first_ms
    wait_ms = min(max(linger_ms - age_ms, 0), linger_ms)
    return min(time.monotonic() + wait_ms / 1000, deadline)


def _apply(session_factory: Callable[[], Session], batch: PreparedBatch) -> None:
    with session_factory() as session, session.begin():
        apply_batch(session, batch)


def _commit(session_factory: Callable[[], Session], work: _Work, postgres: bool) -> None:
    try:
        _apply(session_factory, work.batch)
    except _REFUSED:
        log.warning("sync: batch refused by the database, applying one by one")
        for stream, fields, event in work.parsed:
            single = prepare_batch([event], postgres)
            try:
                _apply(session_factory, single)
            except _REFUSED as exc:
                work.poison.append((stream, event.entry_id.encode(), fields, _describe(exc)))


def _finish(work: _Work) -> DrainResult:
    for stream, entry_id, fields, error in work.poison:
        log.error("sync: dead-lettering %s: %s", entry_id.decode(), error)
        stream.dead_letter(entry_id, fields, error)
    read = 0
    for stream, entries in work.groups:
        stream.acknowledge([entry_id for entry_id, _fields in entries])
        read += len(entries)
    return DrainResult(read, read - len(work.poison), len(work.poison))


def _describe(exc: Exception) -> str:
    """The database's one-line complaint, without parameters (they hold user data)."""
    original = getattr(exc, "orig", None) or exc
    return f"{original.__class__.__name__}: {str(original).splitlines()[0][:300]}"


@contextmanager
def _short_gil_turns() -> Iterator[None]:
    """Let the writer thread take the GIL back soon after each database reply.

    The reading thread is busy with Python work; at the default 5 ms switch
    interval the writer waits up to that long after every round trip, which
    cost about a tenth of the drain's throughput (bench.sync). The setting is
    process-wide, so it is restored when the drain ends.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, WRITER_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


# A batch makes thousands of short-lived dicts and dataclasses, all freed by
# reference counting; at the default thresholds (700, 10, 10) they kept
# triggering the cyclic collector, full collections of the whole heap
# included: ~40 % of the drain's CPU (bench.sync: 20,224 → 30,990 events/s).
DRAIN_GC_THRESHOLD = (100_000, 50, 100)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while the drain runs (it still
    runs: only cycles wait for it, and the drain makes next to none). The
    setting is process-wide, so it is restored when the drain ends."""
    previous = gc.get_threshold()
    gc.set_threshold(*DRAIN_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _uses_postgres(session_factory: Callable[[], Session]) -> bool:
    with session_factory() as session:
        return is_postgres(session)


def drain(
    streams: EventStream | Rotation,
    session_factory: Callable[[], Session],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    time_budget: float | None = None,
    wait_for_events: bool = False,
    linger_ms: int = 0,
    stop: Callable[[], bool] | None = None,
) -> DrainResult:
    """Drain until the stream (every held shard) is empty, ``max_batches`` or
    ``time_budget`` (seconds).

    With ``wait_for_events`` (and a ``time_budget``), an empty stream does not
    end the run: it waits for new entries until the budget is spent. The worker
    then takes up an event within milliseconds of its login, not at its next
    scheduled run, which keeps the login-to-PostgreSQL lag low. Such a run
    with ``linger_ms`` > 0 lets a short batch wait up to that long for more
    entries (see the module's docstring); 0 commits each read at once.

    ``stop`` (checked between batches and waits) ends the run early, as its
    deadline would: the worker is shutting down.
    """
    rotation = streams if isinstance(streams, Rotation) else Rotation.of(streams)
    rotation.restart()
    postgres = _uses_postgres(session_factory)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    lingering = linger_ms > 0 and wait_for_events and deadline is not None
    totals = [0, 0, 0]
    batches = 0
    in_flight: tuple[_Work, Future] | None = None

    def settle() -> None:
        work, future = in_flight
        future.result()  # an outage raises here: nothing of it is acknowledged
        result = _finish(work)
        totals[0] += result.read
        totals[1] += result.applied
        totals[2] += result.dead_lettered

    with _short_gil_turns(), _fewer_collections(), \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-writer") as writer:
        while True:
            out_of_time = (deadline is not None and time.monotonic() >= deadline) or (
                stop is not None and stop())
            more_batches = max_batches is None or batches < max_batches
            got, work = None, None
            # A shard whose last batch was short is skipped (drained) until
            # the next wait, so nothing is read ahead of an empty stream.
            if not out_of_time and more_batches:
                got = rotation.read(batch_size)
            # A full batch is prepared while the previous one commits; a short
            # one may linger, which waits until that commit is acknowledged.
            if got is not None and (not lingering or len(got[1]) >= batch_size):
                work = _prepare([got], postgres)
            if in_flight is not None:
                settle()
                in_flight = None
            if got is None and wait_for_events and deadline is not None and more_batches:
                wait_ms = int((deadline - time.monotonic()) * 1000)
                if stop is not None:  # a stop is noticed within one wait slice
                    wait_ms = min(wait_ms, STOP_CHECK_MS)
                if wait_ms >= MIN_WAIT_MS and not out_of_time:
                    got = rotation.wait(batch_size, wait_ms)
                    if got is None and rotation.shards and time.monotonic() < deadline:
                        continue  # nothing yet: check ``stop`` and wait again
            if work is None and got is not None:
                groups = [got]
                if lingering and len(got[1]) < batch_size:
                    first_ms = min(entry_time_ms(entry_id) for entry_id, _fields in got[1])
                    groups += rotation.linger(batch_size - len(got[1]),
                                              _linger_until(first_ms, linger_ms, deadline),
                                              len(got[1]), first_ms)
                work = _prepare(groups, postgres)
            if work is None:
                break
            in_flight = (work, writer.submit(_commit, session_factory, work, postgres))
            batches += 1
    return DrainResult(*totals, more=rotation.more)
