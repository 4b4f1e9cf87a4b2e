"""``/readyz`` on a Redis Cluster checks every primary, and names the one at fault.

The cluster is the test's own (three ``redis-server`` primaries); faults are
real: a primary's eviction policy changed with ``CONFIG SET``, a primary
frozen with SIGSTOP (its sockets stay open, so only a timeout notices).
"""

from __future__ import annotations

import signal

import pytest
import webtest

from bench.redis_cluster import redis_cluster
from saas.config import configure


@pytest.fixture
def cluster():
    with redis_cluster(3) as running:
        yield running


def _web(app_settings, url: str) -> webtest.TestApp:
    return webtest.TestApp(configure({**app_settings, "redis.url": url}).make_wsgi_app())


def test_readyz_checks_every_primary_of_a_cluster(app_settings, cluster):
    web = _web(app_settings, cluster.url)
    ready = web.get("/readyz").json
    assert ready["status"] == "ok" and ready["checks"]["redis"] == "ok"
    # 16 stream shards by default on a cluster, all reported (and the
    # single stream of earlier releases, drained after the switch).
    assert [shard["shard"] for shard in ready["sync"]["shards"]] == \
        [*(str(n) for n in range(16)), "legacy"]

    last = cluster.nodes[-1]
    with last.client() as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    ready = web.get("/readyz", status=503).json
    assert ready["failing"] == ["redis"]
    assert ready["checks"]["redis"] == (
        f"maxmemory-policy is allkeys-lru; it must be noeviction (127.0.0.1:{last.port})")
    with last.client() as client:
        client.config_set("maxmemory-policy", "noeviction")
    assert web.get("/readyz").json["checks"]["redis"] == "ok"


def test_readyz_names_a_frozen_primary(app_settings, cluster):
    web = _web(app_settings, cluster.url)
    assert web.get("/readyz").json["status"] == "ok"
    frozen = cluster.nodes[1]
    frozen.popen.send_signal(signal.SIGSTOP)
    try:
        ready = web.get("/readyz", status=503).json
    finally:
        frozen.popen.send_signal(signal.SIGCONT)
    assert ready["failing"] == ["redis"]
    assert ready["checks"]["redis"] == f"unreachable (127.0.0.1:{frozen.port})"
    assert web.get("/readyz").json["status"] == "ok"
