"""The store's Redis Cluster client (saas/redis.py) on a real three-primary cluster."""

from __future__ import annotations

import pytest
from redis.exceptions import RedisError

from bench.redis_cluster import redis_cluster
from saas.redis import (
    StoreCluster,
    cluster_from_url,
    parse_cluster_url,
    pipeline,
    primaries,
    redis_from_url,
)

INCR_BY_ARG = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture(scope="module")
def cluster():
    with redis_cluster(3) as running:
        yield running


def test_cluster_urls_name_their_nodes_and_credentials():
    nodes, options = parse_cluster_url("redis+cluster://bk:s%40cret@10.0.0.1:7000,10.0.0.2:7001/")
    assert [(n.host, n.port) for n in nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert options == {"username": "bk", "password": "s@cret", "ssl": False}
    assert parse_cluster_url("rediss+cluster://h:1")[1] == {
        "username": None, "password": None, "ssl": True}
    for bad in ("redis+cluster://10.0.0.1", "redis+cluster://10.0.0.1:7000/0",
                "redis+cluster://10.0.0.1:7000?ssl=1", "redis+cluster://:7000"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)


def test_a_cluster_url_builds_a_cluster_client(cluster):
    client = cluster_from_url(cluster.url)
    assert isinstance(client, StoreCluster) and client.ping()


def test_every_primary_is_found_from_one_node(cluster):
    client = redis_from_url(f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}")
    assert isinstance(client, StoreCluster)
    ports = sorted(node.connection_pool.connection_kwargs["port"] for node in primaries(client))
    assert ports == sorted(cluster.primary_ports())


def test_scripts_in_a_pipeline_survive_a_node_that_lost_them(cluster):
    client = redis_from_url(cluster.url)
    script = client.register_script(INCR_BY_ARG)
    keys = [f"bk:{{app-{n}}}:count" for n in range(6)]  # spread over the primaries
    client.delete(*keys)

    def round_of(amount: int) -> list:
        pipe = pipeline(client)
        for key in keys:
            script(keys=[key], args=[amount], client=pipe)
            pipe.incr(key + ":plain")
        return pipe.execute()

    assert round_of(1)[::2] == [1] * len(keys)
    for node in primaries(client):
        node.script_flush()  # a restart or failover: the scripts are gone
    # Each script is sent again once; nothing else in the pipeline ran twice.
    results = round_of(10)
    assert results[::2] == [11] * len(keys) and results[1::2] == [2] * len(keys)
    assert round_of(100)[::2] == [111] * len(keys)


def test_a_pipelined_script_costs_no_key_lookup_round_trip(cluster):
    client = redis_from_url(cluster.url)
    script = client.register_script(INCR_BY_ARG)
    script(keys=["bk:{warm}:x"], args=[1])  # loaded where it runs

    def getkeys_calls() -> int:
        return sum(node.info("commandstats").get("cmdstat_command|getkeys", {}).get("calls", 0)
                   for node in primaries(client))

    before = getkeys_calls()
    for n in range(20):
        pipe = pipeline(client)
        script(keys=[f"bk:{{app-{n}}}:count"], args=[1], client=pipe)
        pipe.execute()
    assert getkeys_calls() == before


def test_a_script_across_slots_fails_loudly(cluster):
    client = redis_from_url(cluster.url)
    script = client.register_script(INCR_BY_ARG)
    pipe = pipeline(client)
    with pytest.raises(RedisError, match=r"same (key )?slot|CROSSSLOT"):
        script(keys=["bk:{a}:x", "bk:{b}:y"], args=[1], client=pipe)
        pipe.execute()
