"""Building stream entries the way the login path does, and reading the
stream an app's events go to, for the sync tests.

``login_entry`` lives in the benchmark package (``bench.entries``), which must
not import the tests; the tests reuse it from there.
"""

from __future__ import annotations

import uuid

from bench.entries import login_entry
from saas.sync.drain import DrainResult, drain
from saas.sync.shards import leased_shards
from saas.sync.stream import EventStream

__all__ = ["app_stream", "as_read", "drain_all", "empty_streams", "login_entry"]


def as_read(entry: dict[str, str]) -> dict[bytes, bytes]:
    """The entry as XREAD returns it (bytes keys and values)."""
    return {key.encode(): value.encode() for key, value in entry.items()}


def app_stream(registry, app_id: str, consumer: str | None = None,
               reclaim_idle_ms: int = 60_000, fresh: bool = False) -> EventStream:
    """The stream shard the app's login events go to (``saas.sync.stream_shards``
    of the test's app), as a drain reads it; ``fresh`` empties it (and the
    dead letters) first."""
    client, layout = registry["saas.redis"], registry["saas.event_streams"]
    stream = EventStream(client, layout.keys, consumer or f"test-{uuid.uuid4().hex[:6]}",
                         reclaim_idle_ms=reclaim_idle_ms, key=layout.key_for_app(app_id))
    if fresh:
        client.delete(stream.stream, stream.dead)
    return stream


def empty_streams(registry) -> None:
    """Delete every stream shard (legacy included) and the dead letters."""
    layout = registry["saas.event_streams"]
    registry["saas.redis"].delete(*layout.stream_keys(), layout.dead)


def drain_all(registry, session_factory, consumer: str = "test") -> DrainResult:
    """Drain every shard once, as the embedded sync does (all leases, no wait)."""
    layout = registry["saas.event_streams"]
    with leased_shards(registry["saas.redis"], layout, consumer,
                       limit=len(layout.named_keys()), reclaim_idle_ms=60_000) as taken:
        return drain(taken.rotation, session_factory)
