"""One Redis connection per thread for the service's own client.

redis-py checks a connection out of its pool and back in around every command
and every pipeline, behind a retry wrapper and metrics hooks. On the benchmark
machine that bookkeeping cost as much CPU as the round trip itself: a ``GET``
took 125 µs through the client against 66 µs on a connection held by the
thread (docs/performance.md, "One connection per thread"), and a login makes
nine round trips.

A web worker serves one request at a time per thread, so each thread keeps its
own connection and uses it directly. What the pool did around a connection is
kept: a connection is (re)made lazily; one with unread data or closed by the
server (a Redis restart) is dropped before a command is sent; a failed read or
write disconnects it, so the next command reconnects; a forked child never
uses its parent's socket. Commands and replies are the library's own
(``send_command``, ``parse_response``), and so are every error and timeout.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import redis
from redis.connection import Connection, ConnectionPool


class ThreadConnections:
    """The calling thread's connection, made from ``pool``'s settings."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._local = threading.local()
        # Every connection handed out, so ``disconnect_all`` reaches other threads'.
        self._made: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._lock = threading.Lock()

    def connection(self) -> Connection:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            connection = self._pool.connection_class(**self._pool.connection_kwargs)
            local.connection, local.pid = connection, os.getpid()
            with self._lock:
                self._made.add(connection)
        elif connection._sock is not None and _stale(connection):
            connection.disconnect()  # the next command connects afresh
        return connection

    def disconnect_all(self) -> None:
        with self._lock:
            made = list(self._made)
        for connection in made:
            connection.disconnect()


def _stale(connection: Connection) -> bool:
    """Whether the connection holds data or was closed by the server. Nothing
    is owed to us between commands, so either means it must not be used: the
    check redis-py's pool makes before it hands out a connection."""
    try:
        return connection.can_read()
    except (redis.ConnectionError, redis.TimeoutError, OSError):  # closed by the server
        return True


class StoreRedis(redis.Redis):
    """``redis.Redis`` whose commands run on the calling thread's own connection.

    Pipelines that watch keys or run ``MULTI`` and pub/sub still take pooled
    connections (``redis.Redis.pipeline``, ``pubsub``); ``saas.redis.pipeline``
    gives the hot path's non-transactional pipelines this client's connection.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thread_connections = ThreadConnections(self.connection_pool)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        connection = self.thread_connections.connection()
        connection.send_command(*args, **options)
        return self.parse_response(connection, args[0], **options)

    def close(self) -> None:
        threads = getattr(self, "thread_connections", None)
        if threads is not None:
            threads.disconnect_all()
        super().close()
