"""One event stream (a shard) as a consumer group: read, reclaim, acknowledge,
dead-letter.

Every shard's stream has its own consumer group ``sync`` (a group lives on its
stream's key, so each command here touches one key plus, for dead letters,
the one dead-letter stream — never both in one command).

Entries are read with ``XREADGROUP``; entries a dead consumer left pending are
taken over with ``XAUTOCLAIM`` once idle longer than ``reclaim_idle_ms``. An
entry is acknowledged **and deleted** only after its batch committed, so the
stream's length is the backlog. Poison entries move to ``{prefix}:events:dead``
with their error.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from saas.event_streams import DEAD_LETTERS, STREAM

GROUP = "sync"
DEAD_LETTER_MAXLEN = 100_000
RECLAIM_CHECK_MS = 1000  # how often a reader looks for entries to take over


def entry_time_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def now_ms() -> int:
    return int(time.time() * 1000)


def checked(result: Any) -> Any:
    """A pipeline result sent with ``raise_on_error=False``: errors raise here."""
    if isinstance(result, Exception):
        raise result
    return result


def queue_figures(pipe, key: str) -> None:
    """Queue the three reads ``stream_figures`` turns into one stream's figures."""
    pipe.xlen(key)
    pipe.xrange(key, count=1)
    pipe.xpending(key, GROUP)


def stream_figures(results: list[Any], now: int) -> dict[str, Any]:
    """Backlog, oldest entry's age and in-flight count from ``queue_figures``'
    replies. A stream nobody drained yet has no group: nothing is in flight
    (status never creates a stream or a group)."""
    backlog, oldest, pending = results
    if isinstance(pending, redis.ResponseError) and "NOGROUP" in str(pending):
        pending = None
    backlog, oldest, pending = checked(backlog), checked(oldest), checked(pending)
    age = (now - entry_time_ms(oldest[0][0])) / 1000 if oldest else 0.0
    return {
        "backlog": backlog,
        "oldest_pending_age_seconds": round(max(age, 0.0), 3),
        "in_flight": pending["pending"] if isinstance(pending, dict) else 0,
    }


class EventStream:
    """One stream; ``key`` defaults to the single stream ``{prefix}:events``."""

    def __init__(self, client: redis.Redis, keys, consumer: str,
                 reclaim_idle_ms: int = 30_000, key: str | None = None,
                 name: str = "0") -> None:
        self.redis = client
        self.stream = key or keys.global_(STREAM)
        self.name = name  # the shard's name in status and metrics
        self.dead = keys.global_(DEAD_LETTERS)
        self.consumer = consumer
        self.reclaim_idle_ms = reclaim_idle_ms
        self._group_ready = False
        # Entries become reclaimable only after reclaim_idle_ms: looking for
        # them on every read (one XAUTOCLAIM per batch) is wasted work.
        self._reclaim_every = min(reclaim_idle_ms / 2, RECLAIM_CHECK_MS) / 1000
        self._reclaim_after = 0.0  # monotonic; the first read looks at once

    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def read_batch(self, count: int, block_ms: int | None = None,
                   reclaim: bool = True) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Entries to process: first reclaimed ones, then new ones.

        Reclaiming is looked at on the first read, then at most every
        ``RECLAIM_CHECK_MS`` (half of ``reclaim_idle_ms`` if shorter) while it
        finds nothing more.

        With ``block_ms``, waits up to that long for new entries when there are
        none, so a worker picks up a login's event within milliseconds instead
        of at its next scheduled run. Without ``reclaim``, new entries only
        (a batch's top-up reads: its first read already reclaimed).
        """
        self.ensure_group()
        entries = []
        if reclaim and time.monotonic() >= self._reclaim_after:
            _next, claimed, *_deleted = self.redis.xautoclaim(
                self.stream, GROUP, self.consumer, self.reclaim_idle_ms, start_id="0-0",
                count=count)
            entries = [(entry_id, fields) for entry_id, fields in claimed if fields]
            if len(claimed) < count:  # nothing more to take over for now
                self._reclaim_after = time.monotonic() + self._reclaim_every
        if len(entries) < count:
            fresh = self.redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=count - len(entries),
                block=block_ms if block_ms and not entries else None,
            )
            for _stream, items in fresh or []:
                entries.extend((entry_id, fields) for entry_id, fields in items if fields)
        return entries

    def acknowledge(self, entry_ids: list[bytes]) -> None:
        if not entry_ids:
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, GROUP, *entry_ids)
        pipe.xdel(self.stream, *entry_ids)
        pipe.execute()

    def dead_letter(self, entry_id: bytes, fields: dict[bytes, bytes], error: str) -> None:
        self.redis.xadd(
            self.dead,
            {"entry_id": entry_id, "event": fields.get(b"event", b""), "error": error[:500],
             "at_ms": str(int(time.time() * 1000))},
            maxlen=DEAD_LETTER_MAXLEN,
            approximate=True,
        )

    def status(self) -> dict[str, Any]:
        """Backlog, oldest unsynced entry's age, in-flight and dead-letter counts
        of this one stream (``saas.sync.status`` covers every shard)."""
        pipe = self.redis.pipeline(transaction=False)
        queue_figures(pipe, self.stream)
        pipe.xlen(self.dead)
        *figures, dead = pipe.execute(raise_on_error=False)
        return {**stream_figures(figures, now_ms()), "dead_letters": checked(dead)}

    def dead_letters(self, count: int = 20) -> list[dict[str, Any]]:
        return [
            {"id": entry_id.decode(), "entry_id": fields.get(b"entry_id", b"").decode(),
             "error": fields.get(b"error", b"").decode()}
            for entry_id, fields in self.redis.xrevrange(self.dead, count=count)
        ]
