"""The sync's figures over every shard: per shard, and the totals.

The totals keep the single-stream figures' names (``backlog``,
``oldest_pending_age_seconds``, ``in_flight``, ``dead_letters``), so probes
and dashboards written for one stream read the sum (the oldest age: the
maximum). ``shards`` lists each stream the drain covers — ``"0"`` …
``"N-1"`` and, when N > 1, ``"legacy"`` — with its own figures and whether a
drain holds its lease now.

All reads go in one non-transactional pipeline (one round trip on a single
Redis; redis-py's cluster pipeline splits it per node). Each command reads
one key; nothing is created.
"""

from __future__ import annotations

from typing import Any

from saas.event_streams import StreamLayout
from saas.sync.lease import lease_key
from saas.sync.stream import checked, now_ms, queue_figures, stream_figures

_PER_STREAM = 4  # queue_figures' three reads and the lease's EXISTS


def sync_status(client, layout: StreamLayout) -> dict[str, Any]:
    named = layout.named_keys()
    pipe = client.pipeline(transaction=False)
    for _name, key in named:
        queue_figures(pipe, key)
        pipe.exists(lease_key(key))
    pipe.xlen(layout.dead)
    *replies, dead = pipe.execute(raise_on_error=False)
    now = now_ms()
    shards = []
    for index, (name, _key) in enumerate(named):
        own = replies[index * _PER_STREAM:(index + 1) * _PER_STREAM]
        shards.append({"shard": name, **stream_figures(own[:3], now),
                       "leased": bool(checked(own[3]))})
    return {
        "backlog": sum(shard["backlog"] for shard in shards),
        "oldest_pending_age_seconds": max(
            (shard["oldest_pending_age_seconds"] for shard in shards), default=0.0),
        "in_flight": sum(shard["in_flight"] for shard in shards),
        "dead_letters": checked(dead),
        "shards": shards,
    }
