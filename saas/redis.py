"""Redis: one client factory from settings, and key names per app.

``redis.url = memory://`` gives the embedded development store: fakeredis (with
Lua scripting through lupa) shared by everything in the process, so a
development server needs no outside service. ``redis+cluster://h1:p1,h2:p2``
(``rediss+cluster://`` for TLS) is a Redis Cluster, reached through redis-py's
``RedisCluster`` from any of the listed nodes. Every other URL is one Redis.

Keys of one app share the Redis Cluster hash tag ``{app_id}``, so multi-key
atomic operations (Lua scripts, MULTI) on one app's keys stay legal on a cluster;
a cluster refuses any that is not (``CROSSSLOT``), loudly.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

import redis
from redis.client import Pipeline
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, ResponseError

from saas.redis_connections import StoreRedis

MEMORY_SCHEME = "memory://"
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
# Bounded waits: a frozen server fails a request instead of hanging a worker.
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}

_memory_servers: dict[str, object] = {}
_memory_lock = threading.Lock()


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def redis_from_url(url: str) -> redis.Redis | StoreCluster:
    if is_cluster_url(url):
        return cluster_from_url(url)
    if url.startswith(MEMORY_SCHEME):
        import fakeredis  # only the development configuration needs it

        name = url[len(MEMORY_SCHEME):] or "default"
        with _memory_lock:
            server = _memory_servers.setdefault(name, fakeredis.FakeServer())
        return fakeredis.FakeRedis(server=server, decode_responses=False)
    return StoreRedis.from_url(
        url,
        **_TIMEOUTS,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def _raise_first_error(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


class LeanPipeline(Pipeline):
    """A non-transactional pipeline on the thread's own connection, whose Lua
    scripts cost no extra round trip.

    redis-py sends ``SCRIPT EXISTS`` before every pipeline that holds a
    script, a whole round trip per login request. Here the check runs once
    per process and script; should Redis lose its scripts later (a restart),
    the one ``EVALSHA`` answered ``NOSCRIPT`` is sent again as the script
    itself, and nothing else in the pipeline runs twice. The commands go out
    on the client's connection for this thread (``saas.redis_connections``),
    not one checked out of the pool and back.
    """

    _loaded: set[str] = set()
    store: StoreRedis

    def load_scripts(self) -> None:
        missing = [script for script in self.scripts if script.sha not in self._loaded]
        if not missing:
            return
        exists = self.store.script_exists(*(script.sha for script in missing))
        for script, known in zip(missing, exists, strict=True):
            if not known:
                self.store.script_load(script.script)
        LeanPipeline._loaded.update(script.sha for script in missing)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack, self.command_stack = self.command_stack, []
        if not stack:
            return []
        scripts = {script.sha: script for script in self.scripts}
        if scripts:
            self.load_scripts()
            self.scripts = set()
        connection = self.store.thread_connections.connection()
        connection.send_packed_command(connection.pack_commands([args for args, _ in stack]))
        results: list[Any] = []
        for args, options in stack:
            try:
                results.append(redis.Redis.parse_response(self, connection, args[0], **options))
            except ResponseError as error:  # read on: every reply must leave the socket
                results.append(error)
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
            _raise_first_error(results)
        return results

    def __del__(self) -> None:
        # The library's reset gives a pooled connection back; this pipeline
        # takes none (nor watches), so it is skipped unless one was taken.
        if self.connection is not None:
            super().__del__()


def pipeline(client: redis.Redis) -> Pipeline:
    """A non-transactional pipeline for the hot path (``LeanPipeline`` on the
    service's single Redis, ``LeanClusterPipeline`` on a cluster)."""
    if isinstance(client, StoreRedis):
        pipe = LeanPipeline(client.connection_pool, client.response_callbacks,
                            transaction=False, shard_hint=None)
        pipe.store = client
        return pipe
    return client.pipeline(transaction=False)


def primaries(client: Any) -> list[redis.Redis]:
    """One client per primary: the cluster's, or the single store itself."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


def parse_cluster_url(url: str) -> tuple[list[ClusterNode], dict[str, Any]]:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` → the nodes to
    start from and the connection options (``rediss+cluster://``: TLS)."""
    scheme, _, rest = url.partition("://")
    if "?" in rest or "/" in rest.rstrip("/"):
        raise ValueError("a redis+cluster:// URL takes no database or options")
    userinfo, _, hosts = rest.rstrip("/").rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster node must be host:port, not {part!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    options = {"username": unquote(username) or None, "password": unquote(password) or None,
               "ssl": scheme.startswith("rediss")}
    return nodes, options


def cluster_from_url(url: str) -> StoreCluster:
    """A cluster client. The listed nodes are only where it starts: it learns the
    whole cluster (and later changes to it) from ``CLUSTER SLOTS``."""
    nodes, options = parse_cluster_url(url)
    return StoreCluster(startup_nodes=nodes, **options, **_TIMEOUTS)


class StoreCluster(RedisCluster):
    """A cluster client whose pipelines may hold Lua scripts (see LeanClusterPipeline)."""

    def register_script(self, script: str) -> Script:
        registered = super().register_script(script)
        _cluster_scripts[registered.sha] = registered
        return registered

    def pipeline(self, transaction: bool | None = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        if not transaction:
            # The library's class, with EVALSHA allowed: same state, one more method.
            pipe.__class__ = LeanClusterPipeline
            pipe._evalsha_positions = []
        return pipe


_cluster_scripts: dict[str, Script] = {}


class LeanClusterPipeline(ClusterPipeline):
    """A cluster pipeline that may hold scripts, each sent to its keys' node.

    redis-py refuses ``EVALSHA`` in cluster pipelines, since a node that lacks
    the script would answer ``NOSCRIPT``. As in ``LeanPipeline``, that one
    command is then sent again as a plain script call (which loads it on the
    node), and nothing else in the pipeline runs twice. Each script stays
    within one hash slot, as on a single node.
    """

    _evalsha_positions: list[int]

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self._evalsha_positions.append(len(self))
        options = {}
        if int(numkeys):
            # The node of the script's slot, named here: left to find it,
            # redis-py asks a node ``COMMAND GETKEYS`` first, a whole round
            # trip per script. A key of another slot fails on the node itself
            # (CROSSSLOT); a stale slot map is corrected by its MOVED answer.
            slot = self.keyslot(keys_and_args[0])
            options["target_nodes"] = self.nodes_manager.get_node_from_slot(slot)
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        queued = [(position, self._execution_strategy.command_queue[position].args)
                  for position in self._evalsha_positions]
        self._evalsha_positions = []
        results = super().execute(raise_on_error=False)
        for position, args in queued:
            script = _cluster_scripts.get(args[1])
            if isinstance(results[position], NoScriptError) and script is not None:
                numkeys = int(args[2])
                results[position] = script(keys=list(args[3:3 + numkeys]),
                                           args=list(args[3 + numkeys:]))
        if raise_on_error:
            _raise_first_error(results)
        return results


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
