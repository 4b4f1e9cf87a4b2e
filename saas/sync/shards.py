"""A drain run's shards: taken under leases, read in turn.

A run takes up to ``limit`` streams (``saas.sync.shards_per_run``) whose lease
is free — the legacy stream first while it holds entries, then the shards
from a random starting point, so concurrent runs spread over the shards
instead of all asking for shard 0 — and gives the leases back when it ends.
A shard is drained by one holder at a time, in order; runs on other workers
take the other shards meanwhile. A run that dies keeps its shards until the
leases expire (``LEASE_TTL_MS``); the entries it had read are reclaimed by
the next holder with ``XAUTOCLAIM``, as with one stream.

``Rotation`` reads the held shards one batch each in turn, so a busy shard
never starves the others. It waits only when every held shard came back
short (drained): with one shard it blocks on it for the whole wait, as the
single stream always did (in pieces of ``MAX_BLOCK_MS``, keeping the lease
between them); with several it blocks on each in turn for at most
``WAIT_SLICE_MS``, so an event on any held shard waits at most about one
slice per held shard — and never behind another shard's backlog. No block
lasts longer than a held lease can go without being extended.

``Rotation.linger`` tops a short batch up: it reads every held shard again
when the batch should be full at the rate its entries come (every
``LINGER_SLICE_MS`` at most), until it is full or its linger is over (the
drain's batching by size or time).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from saas.event_streams import LEGACY, StreamLayout
from saas.sync.lease import LEASE_TTL_MS, Lease, lease_key, new_token
from saas.sync.stream import EventStream, now_ms

WAIT_SLICE_MS = 50
# One shard's wait is cut in pieces this long, so its lease is kept (extended)
# between them however long the caller waits.
MAX_BLOCK_MS = 1000
MIN_WAIT_MS = 5  # shorter waits are not worth a blocking read (0 would block forever)
# A lingering batch looks for more entries at most this often (when it should
# be full by then); under light load once, at the end of its linger.
LINGER_SLICE_MS = 50

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class Shard:
    stream: EventStream
    lease: Lease | None = None  # None: the caller owns the stream (tests, benchmarks)
    drained: bool = False  # its last read came back short: nothing more right now

    def keep(self) -> bool:
        return self.lease is None or self.lease.keep()

    def spare_ms(self) -> int:
        """How long a read or a pause may last before the lease needs keeping."""
        if self.lease is None:
            return MAX_BLOCK_MS
        return max(self.lease.spare_ms(), MIN_WAIT_MS)


class Rotation:
    """The shards a run holds, read one batch each in turn."""

    def __init__(self, shards: list[Shard]) -> None:
        self.shards = shards
        self._next = 0

    @classmethod
    def of(cls, stream: EventStream) -> Rotation:
        return cls([Shard(stream)])

    def restart(self) -> None:
        """Forget which shards came back short: read each again."""
        for shard in self.shards:
            shard.drained = False

    @property
    def more(self) -> bool:
        """Some held shard's last batch was full: its backlog may go on."""
        return any(not shard.drained for shard in self.shards)

    def _turn(self) -> Iterator[Shard]:
        """Each held shard once, from where the last turn stopped; a shard
        whose lease lapsed is dropped (someone else may hold it now)."""
        for _ in range(len(self.shards)):
            if not self.shards:
                return
            self._next %= len(self.shards)
            shard = self.shards[self._next]
            if not shard.keep():
                del self.shards[self._next]
                continue
            self._next += 1
            yield shard

    def _read(self, shard: Shard, count: int, block_ms: int | None = None) -> Entries:
        entries = shard.stream.read_batch(count, block_ms)
        shard.drained = len(entries) < count
        return entries

    def read(self, count: int) -> tuple[EventStream, Entries] | None:
        """The next batch of the next shard with work, or None when every
        held shard is drained."""
        for shard in self._turn():
            if not shard.drained and (entries := self._read(shard, count)):
                return shard.stream, entries
        return None

    def wait(self, count: int, wait_ms: int) -> tuple[EventStream, Entries] | None:
        """Up to ``wait_ms`` for the first held shard to have entries."""
        deadline = time.monotonic() + wait_ms / 1000
        while self.shards:
            for shard in self._turn():
                left = int((deadline - time.monotonic()) * 1000)
                if left < MIN_WAIT_MS:
                    return None
                block = min(left, MAX_BLOCK_MS if len(self.shards) == 1 else WAIT_SLICE_MS,
                            shard.spare_ms())
                if entries := self._read(shard, count, block_ms=block):
                    return shard.stream, entries
        return None

    def linger(self, count: int, until: float, have: int,
               first_ms: int) -> list[tuple[EventStream, Entries]]:
        """Up to ``count`` more new entries from the held shards, gathered until
        ``count`` came or the monotonic time ``until`` passed.

        It pauses between non-blocking reads instead of blocking: a blocking
        read returns as soon as one entry arrives, so under live load it would
        wake once per login — the very cost lingering saves. Each pause lasts
        until the batch should be full at the rate its entries came so far
        (``have`` of them since ``first_ms``, the first one's stream time), at
        least ``LINGER_SLICE_MS``: under a steady load too light to fill the
        batch, one read at the end of the linger instead of one every slice.
        Each read keeps its shard's lease and no pause outlasts one; a shard
        whose lease lapsed is dropped, and with none left the linger ends.
        """
        gathered: list[tuple[EventStream, Entries]] = []
        want = count
        while want > 0 and self.shards:
            left = (until - time.monotonic()) * 1000
            if left < MIN_WAIT_MS:
                break
            spare = min(shard.spare_ms() for shard in self.shards)
            time.sleep(min(left, _fill_ms(have, want, first_ms), spare) / 1000)
            for shard in self._turn():
                entries = shard.stream.read_batch(want, reclaim=False)
                shard.drained = len(entries) < want
                if entries:
                    gathered.append((shard.stream, entries))
                    want -= len(entries)
                    have += len(entries)
                if not want:
                    break
        return gathered


def _fill_ms(have: int, want: int, first_ms: int) -> float:
    """When ``want`` more entries should have come, at the rate ``have`` came
    since ``first_ms`` (never sooner than ``LINGER_SLICE_MS``: a burst, or
    clocks that differ, then reads every slice)."""
    elapsed_ms = max(now_ms() - first_ms, 1)
    return max(want * elapsed_ms / max(have, 1), LINGER_SLICE_MS)


@dataclass
class Taken:
    rotation: Rotation
    free_left: bool  # free shards were left over: another run should take them


def _candidates(client, layout: StreamLayout) -> list[tuple[str, str]]:
    shards = [(str(shard), layout.key(shard)) for shard in range(layout.shards)]
    start = random.randrange(len(shards))  # noqa: S311 - spreading load, not a secret
    ordered = shards[start:] + shards[:start]
    if layout.legacy is not None and client.xlen(layout.legacy):
        ordered.insert(0, (LEGACY, layout.legacy))
    return ordered


def _any_free(client, keys: list[str]) -> bool:
    if not keys:
        return False
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(lease_key(key))
    return not all(pipe.execute())


def _take(client, layout: StreamLayout, owner: str, token: str, limit: int,
          reclaim_idle_ms: int, ttl_ms: int, held: list[Shard]) -> bool:
    """Fill ``held`` (as leases are taken, so a failure half-way still gives
    them back); True when free shards were left over."""
    candidates = _candidates(client, layout)
    index = 0
    while index < len(candidates) and len(held) < limit:
        name, key = candidates[index]
        index += 1
        lease = Lease(client, lease_key(key), token, ttl_ms)
        if lease.acquire():
            stream = EventStream(client, layout.keys, owner, reclaim_idle_ms, key=key, name=name)
            held.append(Shard(stream, lease))
    return _any_free(client, [key for _name, key in candidates[index:]])


@contextlib.contextmanager
def leased_shards(client, layout: StreamLayout, owner: str, *, limit: int,
                  reclaim_idle_ms: int = 30_000, ttl_ms: int = LEASE_TTL_MS,
                  patience: float = 0.0) -> Iterator[Taken]:
    """Take up to ``limit`` free shards for the ``with`` block, then give them back.

    With ``patience`` (seconds), a run that finds every shard held tries again
    every ``WAIT_SLICE_MS`` for that long: a holder about to end its run then
    hands over without a gap until the next scheduled run.
    """
    token = new_token(owner)
    give_up = time.monotonic() + patience
    held: list[Shard] = []
    try:
        while True:
            left = _take(client, layout, owner, token, limit, reclaim_idle_ms, ttl_ms, held)
            if held or time.monotonic() + WAIT_SLICE_MS / 1000 >= give_up:
                break
            time.sleep(WAIT_SLICE_MS / 1000)
        yield Taken(Rotation(list(held)), left)  # a copy: the rotation drops lapsed ones
    finally:
        for shard in held:
            # A lease that cannot be given back (Redis gone) simply expires.
            with contextlib.suppress(redis.RedisError):
                shard.lease.release()
