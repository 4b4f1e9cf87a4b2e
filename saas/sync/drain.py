"""One drain step: read a batch, commit it in one transaction, then acknowledge.

Poison entries (invalid, or refused by the database, e.g. for an app deleted
since the login) are dead-lettered one by one, so they never block the events
behind them. A database outage raises: nothing is acknowledged and the entries
are reclaimed later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from saas.sync.parse import ParsedEvent, PoisonEvent, parse_entry
from saas.sync.stream import EventStream
from saas.sync.writer import write_batch
from saas.users.pending import PendingMerges

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 2000
# Errors that come from the data of one event, not from the database's health
# (an outage or a missing migration must leave the entries pending instead).
# The COPY path raises psycopg's own errors, the generic path SQLAlchemy's.
_REFUSED = (IntegrityError, DataError, psycopg.errors.IntegrityError, psycopg.errors.DataError)


@dataclass(frozen=True)
class DrainResult:
    read: int
    applied: int
    dead_lettered: int


def _commit(session_factory: Callable[[], Session], events: list[ParsedEvent]):
    with session_factory() as session, session.begin():
        return write_batch(session, events)


def drain_batch(
    stream: EventStream,
    session_factory: Callable[[], Session],
    pending: PendingMerges,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> DrainResult:
    entries = stream.read_batch(batch_size)
    if not entries:
        return DrainResult(0, 0, 0)
    parsed: list[ParsedEvent] = []
    poison: list[tuple[bytes, dict, str]] = []
    for entry_id, fields in entries:
        try:
            parsed.append(parse_entry(entry_id.decode(), fields))
        except PoisonEvent as exc:
            poison.append((entry_id, fields, str(exc)))

    fields_by_id = dict(entries)
    states = {}
    try:
        states = _commit(session_factory, parsed) if parsed else {}
    except _REFUSED:
        log.warning("sync: batch refused by the database, applying one by one")
        for event in parsed:
            try:
                states.update(_commit(session_factory, [event]))
            except _REFUSED as exc:
                entry_id = event.entry_id.encode()
                poison.append((entry_id, fields_by_id[entry_id], _describe(exc)))

    for entry_id, fields, error in poison:
        log.error("sync: dead-lettering %s: %s", entry_id.decode(), error)
        stream.dead_letter(entry_id, fields, error)
    stream.acknowledge([entry_id for entry_id, _fields in entries])
    _trim_overlays(pending, parsed, states)
    return DrainResult(len(entries), len(entries) - len(poison), len(poison))


def _describe(exc: Exception) -> str:
    """The database's one-line complaint, without parameters (they hold user data)."""
    original = getattr(exc, "orig", None) or exc
    return f"{original.__class__.__name__}: {str(original).splitlines()[0][:300]}"


def _trim_overlays(pending: PendingMerges, events: list[ParsedEvent], states) -> None:
    if not states:
        return
    app_ids = {event.user.user_id: event.user.app_id for event in events if event.user}
    by_app: dict[str, list] = {}
    for user_id, state in states.items():
        by_app.setdefault(app_ids[user_id], []).append((str(user_id), state.last_login_ms))
    pipe = pending.redis.pipeline(transaction=False)
    for app_id, committed in by_app.items():
        pending.trim(app_id, committed, client=pipe)  # one call per app: one hash slot
    pipe.execute()


def drain(
    stream: EventStream,
    session_factory: Callable[[], Session],
    pending: PendingMerges,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> DrainResult:
    """Drain until the stream is empty (or ``max_batches``); totals of all batches."""
    read = applied = dead = batches = 0
    while max_batches is None or batches < max_batches:
        result = drain_batch(stream, session_factory, pending, batch_size)
        read += result.read
        applied += result.applied
        dead += result.dead_lettered
        batches += 1
        if result.read < batch_size:
            break
    return DrainResult(read, applied, dead)
