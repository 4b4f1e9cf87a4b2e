"""What the login path left in Redis, by kind: for "nothing half-done" and
"nothing persisted" checks.

Keys are ``{prefix}:{app_id}:<kind>:…`` (per app) or ``{prefix}:<kind>:…``;
the event streams are ``{prefix}:events`` or its shards ``{prefix}:events:{s<i>}``
(kind ``events``, with their leases). Rate-limit counters (kind ``rl``,
global ``{rl}``) are the one thing a refused request is allowed to leave.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import redis

from saas.event_streams import StreamLayout
from saas.redis import Keys
from saas.sync.stream import entry_time_ms

RATE_LIMIT_KINDS = frozenset({"rl", "{rl}"})


def key_kind(key: str, prefix: str) -> str:
    rest = key[len(prefix) + 1:]
    head, _, tail = rest.partition(":")
    if head.startswith("{") and head != "{rl}":  # an app's hash tag
        return tail.partition(":")[0]
    return head


def keys_by_kind(client: redis.Redis, prefix: str) -> dict[str, set[str]]:
    """Every key under the prefix, grouped by kind (the event streams excluded)."""
    found: dict[str, set[str]] = {}
    for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw.decode()
        kind = key_kind(key, prefix)
        if kind == "events":
            continue
        found.setdefault(kind, set()).add(key)
    return found


def lasting_keys(client: redis.Redis, prefix: str) -> set[str]:
    """Keys other than rate-limit counters."""
    return {key for kind, keys in keys_by_kind(client, prefix).items()
            if kind not in RATE_LIMIT_KINDS for key in keys}


def expiry_deadlines(client: redis.Redis, keys: set[str]) -> dict[str, float]:
    """For each key with a TTL, the monotonic time by which Redis drops it.
    A key already gone (-2: it expired between the SCAN and this look-up) is
    due at once; a key without a TTL (-1) has no deadline."""
    ordered = sorted(keys)
    pipe = client.pipeline(transaction=False)
    for key in ordered:
        pipe.pttl(key)
    asked = time.monotonic()
    return {key: asked + max(ttl, 0) / 1000
            for key, ttl in zip(ordered, pipe.execute(), strict=True) if ttl != -1}


def expired_by_now(deadlines: dict[str, float], key: str) -> bool:
    """True when a key that is gone had reached its own expiry (50 ms margin)."""
    return key in deadlines and time.monotonic() >= deadlines[key] - 0.05


def _entry_order(entry_id: bytes) -> tuple[int, int]:
    return entry_time_ms(entry_id), int(entry_id.split(b"-", 1)[1])


def stream_events(client: redis.Redis, streams: str | StreamLayout) -> list[dict[str, Any]]:
    """The decoded events of every login stream shard, oldest first (by entry id).

    ``streams``: the app's layout (``registry["saas.event_streams"]``), or a
    prefix for the single stream of ``stream_shards = 1``.
    """
    layout = streams if isinstance(streams, StreamLayout) else StreamLayout(Keys(streams))
    entries = [entry for key in layout.stream_keys() for entry in client.xrange(key)]
    entries.sort(key=lambda entry: _entry_order(entry[0]))
    return [json.loads(fields[b"event"]) for _id, fields in entries]


def audit_types(events: list[dict[str, Any]]) -> Counter:
    return Counter(record["type"] for event in events for record in event["audit"])


def upserts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["user"] for event in events if event.get("user")]
