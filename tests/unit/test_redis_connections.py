"""The service's Redis client keeps one connection per thread
(saas.redis_connections): what redis-py's pool did around a connection still
holds without it."""

from __future__ import annotations

import os
import select
import threading
import uuid

import pytest
import redis

from saas.redis import pipeline, redis_from_url
from saas.redis_connections import StoreRedis
from tests.conftest import REDIS_URL


@pytest.fixture
def store():
    client = redis_from_url(REDIS_URL)
    assert isinstance(client, StoreRedis)
    yield client
    client.close()


@pytest.fixture
def key(redis_prefix):
    name = f"{redis_prefix}:threadconn:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


def test_a_thread_reuses_its_connection_and_takes_none_from_the_pool(store, key):
    store.set(key, "1")
    first = store.client_id()
    pipe = pipeline(store)
    pipe.incr(key)
    pipe.client_id()
    assert pipe.execute() == [2, first]
    assert store.client_id() == first
    assert store.connection_pool._created_connections == 0


def test_threads_each_have_their_own_connection_and_replies(store, key):
    ids: dict[int, int] = {}
    errors: list[str] = []

    def work(number: int) -> None:
        name = f"{key}:{number}"
        ids[number] = store.client_id()
        for count in range(1, 301):
            pipe = pipeline(store)
            pipe.incr(name)
            pipe.get(name)
            if pipe.execute() != [count, str(count).encode()]:
                errors.append(f"thread {number} got another reply at {count}")
                return
        store.delete(name)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids.values())) == 4


def test_a_connection_the_server_closed_is_replaced_before_the_next_command(store, key):
    store.set(key, "kept")
    doomed = store.client_id()
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=doomed) == 1
    # No ConnectionError: the closed socket is noticed before the command leaves.
    assert store.get(key) == b"kept"
    assert store.client_id() != doomed


def test_stale_data_on_the_connection_never_answers_a_later_command(store, key):
    store.set(key, "value")
    # A reply left unread (as after an interrupted read) waits on the socket.
    connection = store.thread_connections.connection()
    connection.send_command("PING")
    assert select.select([connection._sock], [], [], 10)[0]
    assert store.get(key) == b"value"


def test_a_failed_command_in_a_pipeline_leaves_no_reply_behind(store, key):
    store.set(key, "text")
    pipe = pipeline(store)
    pipe.incr(key)
    pipe.get(key)
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redis.ResponseError)
    assert results[1] == b"text"
    with pytest.raises(redis.ResponseError):
        pipe.incr(key)
        pipe.execute()
    assert store.get(key) == b"text"


def test_a_forked_child_never_uses_its_parents_socket(store, key):
    parent = store.client_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id and leave at once
        try:
            os.write(write, str(store.client_id()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    assert child != parent
    assert store.client_id() == parent


def test_close_disconnects_every_threads_connection(store):
    ids: list[int] = []
    started, finish = threading.Event(), threading.Event()

    def other_thread() -> None:
        ids.append(store.client_id())
        started.set()
        finish.wait(60)  # alive, holding its connection, while close() runs

    thread = threading.Thread(target=other_thread)
    thread.start()
    started.wait(60)
    ids.append(store.client_id())
    observer = redis.Redis.from_url(REDIS_URL)
    assert set(ids) <= {int(entry["id"]) for entry in observer.client_list()}
    store.close()
    finish.set()
    thread.join()
    assert not set(ids) & {int(entry["id"]) for entry in observer.client_list()}
    observer.close()
