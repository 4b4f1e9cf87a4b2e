"""Where login events go: N stream shards, an app's events always in the same one.

One stream takes every login's write, so on a Redis Cluster one node would
carry the whole login path's stream traffic. With ``saas.sync.stream_shards``
= N > 1 the events are spread over N streams, ``{prefix}:events:{s<i>}``, each
with its own hash tag (so a cluster spreads them over its nodes), and an app's
events all go to shard ``crc32(app_id) % N``: one app's events stay in order.
N = 1 keeps the single stream ``{prefix}:events`` of earlier releases.

An event without an app (none is written today) goes to shard 0.

After a switch from one stream to shards, the old ``{prefix}:events`` is the
*legacy* stream: the drain empties it too (docs/operations.md, "Stream
shards"). Dead letters stay in one stream, ``{prefix}:events:dead``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from saas.redis import Keys, is_cluster_url

STREAM = "events"
DEAD_LETTERS = STREAM + ":dead"
CLUSTER_SHARDS = 16  # the default number of shards on a Redis Cluster
LEGACY = "legacy"  # the legacy stream's name among the shards (status, metrics)
NO_APP_SHARD = 0


def default_shards(redis_url: str) -> int:
    """16 streams on a cluster (one node's worth of stream traffic each), else 1."""
    return CLUSTER_SHARDS if is_cluster_url(redis_url) else 1


def shard_of(app_id: str | None, shards: int) -> int:
    """The shard of an app's events: ``zlib.crc32(app_id) % shards``."""
    if shards == 1 or not app_id:
        return NO_APP_SHARD
    return zlib.crc32(app_id.encode("utf-8")) % shards


@dataclass(frozen=True)
class StreamLayout:
    """The stream keys of one deployment (its prefix and its number of shards)."""

    keys: Keys
    shards: int = 1

    @property
    def single(self) -> str:
        """``{prefix}:events``: the one stream when N = 1, the legacy one after."""
        return self.keys.global_(STREAM)

    @property
    def dead(self) -> str:
        return self.keys.global_(DEAD_LETTERS)

    @property
    def legacy(self) -> str | None:
        """The stream of the single-stream layout, still drained when N > 1."""
        return self.single if self.shards > 1 else None

    def key(self, shard: int) -> str:
        if self.shards == 1:
            return self.single
        return self.keys.global_(STREAM, f"{{s{shard}}}")

    def key_for_app(self, app_id: str | None) -> str:
        return self.key(shard_of(app_id, self.shards))

    def named_keys(self) -> list[tuple[str, str]]:
        """Every stream the drain covers, by name: ``"0"`` … ``"N-1"``, then
        ``"legacy"`` when N > 1."""
        named = [(str(shard), self.key(shard)) for shard in range(self.shards)]
        if self.legacy is not None:
            named.append((LEGACY, self.legacy))
        return named

    def stream_keys(self) -> list[str]:
        return [key for _name, key in self.named_keys()]


def layout_from_settings(settings: Mapping[str, Any]) -> StreamLayout:
    shards = settings.get("saas.sync.stream_shards") or default_shards(settings["redis.url"])
    return StreamLayout(Keys(settings["saas.redis_prefix"]), int(shards))


def includeme(config) -> None:
    layout = layout_from_settings(config.registry.settings)
    config.registry["saas.event_streams"] = layout
    config.add_request_method(lambda r: r.registry["saas.event_streams"], "event_streams",
                              reify=True)
