"""Redis: one client factory from settings, and key names per app.

``redis.url = memory://`` gives the embedded development store: fakeredis (with
Lua scripting through lupa) shared by everything in the process, so a
development server needs no outside service. Every other URL is real Redis.

Keys of one app share the Redis Cluster hash tag ``{app_id}``, so multi-key
atomic operations (Lua scripts, MULTI) on one app's keys stay legal on a cluster.
"""

from __future__ import annotations

import threading

import redis

MEMORY_SCHEME = "memory://"

_memory_servers: dict[str, object] = {}
_memory_lock = threading.Lock()


def redis_from_url(url: str) -> redis.Redis:
    if url.startswith(MEMORY_SCHEME):
        import fakeredis  # only the development configuration needs it

        name = url[len(MEMORY_SCHEME):] or "default"
        with _memory_lock:
            server = _memory_servers.setdefault(name, fakeredis.FakeServer())
        return fakeredis.FakeRedis(server=server, decode_responses=False)
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
    )


class Keys:
    """Builds namespaced key names: ``{prefix}:...`` and ``{prefix}:{app_id}:...``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def app(self, app_id: str, *parts: str) -> str:
        return ":".join((self.prefix, "{" + app_id + "}", *parts))

    def global_(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))


def includeme(config) -> None:
    settings = config.registry.settings
    config.registry["saas.redis"] = redis_from_url(settings["redis.url"])
    config.registry["saas.redis_keys"] = Keys(settings["saas.redis_prefix"])
    config.add_request_method(lambda r: r.registry["saas.redis"], "redis", reify=True)
    config.add_request_method(lambda r: r.registry["saas.redis_keys"], "redis_keys", reify=True)
