"""Redis: one client factory from settings, and key names per app.

``redis.url = memory://`` gives the embedded development store: fakeredis (with
Lua scripting through lupa) shared by everything in the process, so a
development server needs no outside service. Every other URL is real Redis.

Keys of one app share the Redis Cluster hash tag ``{app_id}``, so multi-key
atomic operations (Lua scripts, MULTI) on one app's keys stay legal on a cluster.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

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


class LeanPipeline(Pipeline):
    """A non-transactional pipeline whose Lua scripts cost no extra round trip.

    redis-py sends ``SCRIPT EXISTS`` before every pipeline that holds a
    script, a whole round trip per login request. Here the check runs once
    per process and script; should Redis lose its scripts later (a restart),
    the one ``EVALSHA`` answered ``NOSCRIPT`` is sent again as the script
    itself, and nothing else in the pipeline runs twice.
    """

    _loaded: set[str] = set()

    def load_scripts(self) -> None:
        if all(script.sha in self._loaded for script in self.scripts):
            return
        super().load_scripts()
        LeanPipeline._loaded.update(script.sha for script in self.scripts)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = list(self.command_stack)
        scripts = {script.sha: script for script in self.scripts}
        results = super().execute(raise_on_error=False)
        for index, result in enumerate(results):
            if isinstance(result, NoScriptError):
                args = stack[index][0]
                script = scripts.get(args[1])
                if script is not None:
                    LeanPipeline._loaded.discard(script.sha)
                    numkeys = int(args[2])
                    results[index] = script(keys=list(args[3:3 + numkeys]),
                                            args=list(args[3 + numkeys:]))
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


def pipeline(client: redis.Redis) -> Pipeline:
    """A non-transactional pipeline for the hot path (``LeanPipeline`` on real Redis)."""
    if type(client) is redis.Redis:
        return LeanPipeline(client.connection_pool, client.response_callbacks,
                            transaction=False, shard_hint=None)
    return client.pipeline(transaction=False)


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
