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
batch of each in turn, each batch acknowledged on its own shard's stream.
"""

from __future__ import annotations

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
from saas.sync.stream import EventStream
from saas.sync.writer import PreparedBatch, apply_batch, is_postgres, prepare_batch

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 2000
WRITER_SWITCH_INTERVAL = 0.0005  # seconds; see _short_gil_turns
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


@dataclass
class _Work:
    stream: EventStream  # the shard the entries came from
    entries: list[tuple[bytes, dict]]
    parsed: list[ParsedEvent]
    poison: list[tuple[bytes, dict, str]]
    batch: PreparedBatch


def _read_and_prepare(rotation: Rotation, batch_size: int, postgres: bool,
                      wait_ms: int | None = None) -> _Work | None:
    got = rotation.wait(batch_size, wait_ms) if wait_ms else rotation.read(batch_size)
    if got is None:
        return None
    stream, entries = got
    parsed: list[ParsedEvent] = []
    poison: list[tuple[bytes, dict, str]] = []
    for entry_id, fields in entries:
        try:
            parsed.append(parse_entry(entry_id.decode(), fields))
        except PoisonEvent as exc:
            poison.append((entry_id, fields, str(exc)))
    return _Work(stream, entries, parsed, poison, prepare_batch(parsed, postgres))


def _apply(session_factory: Callable[[], Session], batch: PreparedBatch) -> None:
    with session_factory() as session, session.begin():
        apply_batch(session, batch)


def _commit(session_factory: Callable[[], Session], work: _Work, postgres: bool) -> None:
    try:
        _apply(session_factory, work.batch)
    except _REFUSED:
        log.warning("sync: batch refused by the database, applying one by one")
        fields_by_id = dict(work.entries)
        for event in work.parsed:
            single = prepare_batch([event], postgres)
            try:
                _apply(session_factory, single)
            except _REFUSED as exc:
                entry_id = event.entry_id.encode()
                work.poison.append((entry_id, fields_by_id[entry_id], _describe(exc)))


def _finish(work: _Work) -> DrainResult:
    stream = work.stream
    for entry_id, fields, error in work.poison:
        log.error("sync: dead-lettering %s: %s", entry_id.decode(), error)
        stream.dead_letter(entry_id, fields, error)
    stream.acknowledge([entry_id for entry_id, _fields in work.entries])
    return DrainResult(len(work.entries), len(work.entries) - len(work.poison),
                       len(work.poison))


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
) -> DrainResult:
    """Drain until the stream (every held shard) is empty, ``max_batches`` or
    ``time_budget`` (seconds).

    With ``wait_for_events`` (and a ``time_budget``), an empty stream does not
    end the run: it waits for new entries until the budget is spent. The worker
    then takes up an event within milliseconds of its login, not at its next
    scheduled run, which keeps the login-to-PostgreSQL lag low.
    """
    rotation = streams if isinstance(streams, Rotation) else Rotation.of(streams)
    rotation.restart()
    postgres = _uses_postgres(session_factory)
    deadline = None if time_budget is None else time.monotonic() + time_budget
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

    with _short_gil_turns(), \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-writer") as writer:
        while True:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            work = None
            # A shard whose last batch was short is skipped (drained) until
            # the next wait, so nothing is read ahead of an empty stream.
            if not out_of_time and (max_batches is None or batches < max_batches):
                work = _read_and_prepare(rotation, batch_size, postgres)
            if in_flight is not None:
                settle()
                in_flight = None
            if work is None and wait_for_events and deadline is not None and (
                    max_batches is None or batches < max_batches):
                wait_ms = int((deadline - time.monotonic()) * 1000)
                if wait_ms >= MIN_WAIT_MS:
                    work = _read_and_prepare(rotation, batch_size, postgres, wait_ms=wait_ms)
            if work is None:
                break
            in_flight = (work, writer.submit(_commit, session_factory, work, postgres))
            batches += 1
    return DrainResult(*totals, more=rotation.more)
