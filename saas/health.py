"""Liveness and readiness probes for load balancers and orchestrators.

Readiness also checks how Redis is deployed: the store must run with
``maxmemory-policy noeviction``. An evicting Redis would drop used-markers
(states, codes, replayed tokens) and unsynced events under memory pressure,
silently turning "single use" into "usually single use", so a process whose
store may evict reports itself not ready (docs/operations.md).
"""

from __future__ import annotations

import logging

import redis
from pyramid.view import view_config
from redis.cluster import RedisCluster
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from saas.redis import primaries
from saas.sync.status import sync_status as shard_status

log = logging.getLogger(__name__)


PROBE_CONNECT_TIMEOUT = 3  # seconds


def _probe_engine(registry) -> Engine:
    """A fresh connection per probe, with a connect timeout.

    The pool's connections would wait forever on a frozen server (its kernel
    still acknowledges every byte), so readiness would hang instead of
    failing; a new connection's handshake is bounded by ``connect_timeout``.
    """
    engine = registry.get("saas.health_engine")
    if engine is None:
        url = registry["saas.db_engine"].url
        if url.get_backend_name() == "postgresql":
            engine = create_engine(url, poolclass=NullPool,
                                   connect_args={"connect_timeout": PROBE_CONNECT_TIMEOUT})
        else:
            engine = registry["saas.db_engine"]
        registry["saas.health_engine"] = engine
    return engine


def database_check_name(registry) -> str:
    """The readiness check's name for the configured database: ``postgres`` in
    production (as docs/operations.md says), else the dialect, e.g. ``sqlite``
    for development.ini's file — never "postgres" for a database that is not."""
    backend = registry["saas.db_engine"].url.get_backend_name()
    return "postgres" if backend == "postgresql" else backend


def check_database(request) -> str | None:
    try:
        with _probe_engine(request.registry).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc.__class__.__name__)
        return "unreachable"
    return None


REQUIRED_POLICY = "noeviction"


def eviction_problem(client) -> str | None:
    """The store's ``maxmemory-policy`` when it is not ``noeviction``, else None.

    Read from ``INFO memory`` (managed services often disable ``CONFIG``); the
    embedded development store has no INFO and never evicts.
    """
    if not isinstance(client, redis.Redis) or type(client).__module__.startswith("fakeredis"):
        return None
    policy = client.info("memory").get("maxmemory_policy")
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy in (None, REQUIRED_POLICY):
        return None
    return f"maxmemory-policy is {policy}; it must be {REQUIRED_POLICY}"


def _node_name(client) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def _cluster_node_problem(client) -> str | None:
    """A cluster primary that answers but says its cluster is not serving."""
    state = client.cluster("info").get("cluster_state")
    return None if state == "ok" else f"cluster_state is {state}"


def check_redis(request) -> str | None:
    """Every primary answers and never evicts; on a cluster, each says it serves.

    A single store reports ``unreachable`` or its eviction policy; a cluster
    names the node at fault, so an operator knows which host to look at.
    """
    store = request.redis
    cluster = isinstance(store, RedisCluster)
    try:
        nodes = primaries(store)
    except Exception as exc:
        log.warning("readiness: redis check failed: %s", exc.__class__.__name__)
        return "unreachable"
    for node in nodes:
        where = f" ({_node_name(node)})" if cluster else ""
        try:
            node.ping()
            problem = eviction_problem(node) or (_cluster_node_problem(node) if cluster else None)
        except Exception as exc:
            log.warning("readiness: redis check failed%s: %s", where, exc.__class__.__name__)
            return "unreachable" + where
        if problem:
            log.warning("readiness: redis%s %s", where, problem)
            return problem + where
    return None


@view_config(route_name="healthz", renderer="json", request_method="GET")
def healthz(request):
    return {"status": "ok"}


def sync_status(request) -> dict | None:
    """The event sync's figures, totals and per shard (docs/operations.md), or
    None without Redis."""
    try:
        return shard_status(request.redis, request.event_streams)
    except redis.RedisError:
        return None


@view_config(route_name="readyz", renderer="json", request_method="GET")
def readyz(request):
    checks = {database_check_name(request.registry): check_database(request),
              "redis": check_redis(request)}
    failing = sorted(name for name, problem in checks.items() if problem)
    body = {"status": "unavailable" if failing else "ok",
            "checks": {n: p or "ok" for n, p in checks.items()}}
    if failing:
        request.response.status_int = 503
        body["failing"] = failing
    else:
        body["sync"] = sync_status(request)
    return body


_METRICS = (
    ("backlog", "Login events not yet written to PostgreSQL."),
    ("oldest_pending_age_seconds", "Age of the oldest login event not yet written."),
    ("in_flight", "Events read by a worker and not yet acknowledged."),
    ("dead_letters", "Events parked in the dead-letter stream."),
)
# The same figures per stream shard, labelled ``shard="0"`` … or ``"legacy"``.
_SHARD_METRICS = (
    ("backlog", "Login events of one stream shard not yet written to PostgreSQL."),
    ("oldest_pending_age_seconds", "Age of the oldest unwritten login event of one shard."),
    ("in_flight", "Events of one shard read by a worker and not yet acknowledged."),
    ("leased", "Whether a drain holds the shard's lease now."),
)


def _shard_lines(status: dict | None) -> list[str]:
    lines = []
    for name, help_ in _SHARD_METRICS:
        metric = f"bridgekeeper_sync_shard_{name}"
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} gauge"]
        for shard in (status or {}).get("shards", ()):
            value = int(shard[name]) if name == "leased" else shard[name]
            lines.append(f'{metric}{{shard="{shard["shard"]}"}} {value}')
    return lines


@view_config(route_name="metrics", request_method="GET")
def metrics(request):
    """Prometheus text exposition of the sync figures: totals (the names of
    the single-stream release) and per shard."""
    status = sync_status(request)
    lines = []
    for name, help_ in _METRICS:
        metric = f"bridgekeeper_sync_{name}"
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} gauge"]
        if status is not None:
            lines.append(f"{metric} {status[name]}")
    lines += _shard_lines(status)
    lines += ["# HELP bridgekeeper_redis_up Whether Redis answered.",
              "# TYPE bridgekeeper_redis_up gauge", f"bridgekeeper_redis_up {int(bool(status))}"]
    response = request.response
    response.content_type = "text/plain"
    response.charset = "utf-8"
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    response.text = "\n".join(lines) + "\n"
    return response
