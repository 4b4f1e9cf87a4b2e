"""What the Celery broker needs, by kind: transport options, queues, routes.

Two brokers are supported: RabbitMQ (``amqp://``), recommended in
production, and Redis (``redis://``) for small installs; ``memory://`` serves
development and unit tests. Options of one transport mean nothing, or
something else, to the other, so each kind gets its own and nothing leaks
across (a Redis socket option passed to py-amqp would be ignored at best).

Every deployment has two queues, both durable: ``celery.default_queue`` for
the sync drain and the account requests (short, and a member or a login is
waiting on them), and ``<default_queue>.long`` for tasks that wait on other
hosts or sweep tables (webhooks, mail, the hourly purges), so a slow webhook
receiver cannot hold every worker slot while login events pile up. A worker
started without ``-Q`` consumes both; docs/operations.md ("Broker") says why
each task sits where it does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from kombu import Exchange, Queue

REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
LONG_QUEUE_SUFFIX = ".long"

# Fail fast instead of hanging when the broker is down: a publish, or the
# first connection of a producer, gives up after a few short retries. kombu
# reads these for every transport (``Connection.ensure_connection``).
RETRY_OPTIONS: dict[str, Any] = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 4}
# Publisher confirms: a publish waits for RabbitMQ's ack, so a message the
# broker refused (too large, a full queue) raises instead of vanishing.
AMQP_TRANSPORT_OPTIONS: dict[str, Any] = {"confirm_publish": True}
# Quorum queues: replicated on a RabbitMQ cluster, durable by nature, and the
# kind Celery's native delayed delivery (a retry's countdown) works with.
QUORUM = {"x-queue-type": "quorum"}
# A worker's connection sends heartbeats: a dead broker or a cut link is
# noticed within two intervals, and RabbitMQ drops a dead worker's
# connection (requeueing its unacknowledged tasks) as fast.
AMQP_HEARTBEAT = 30


class BrokerKind(enum.StrEnum):
    AMQP = "amqp"
    REDIS = "redis"
    OTHER = "other"  # memory:// (development, unit tests) and the like


def broker_kind(url: str) -> BrokerKind:
    if url.startswith(AMQP_SCHEMES):
        return BrokerKind.AMQP
    if url.startswith(REDIS_SCHEMES):
        return BrokerKind.REDIS
    return BrokerKind.OTHER


def long_queue(default_queue: str) -> str:
    """The queue of the long tasks beside ``default_queue``."""
    return default_queue + LONG_QUEUE_SUFFIX


def transport_options(url: str) -> dict[str, Any]:
    """kombu's transport options for the broker at ``url``."""
    options = dict(RETRY_OPTIONS)
    kind = broker_kind(url)
    if kind is BrokerKind.REDIS:
        options.update(REDIS_TRANSPORT_OPTIONS)
    elif kind is BrokerKind.AMQP:
        options.update(AMQP_TRANSPORT_OPTIONS)
    return options


def task_queues(url: str, default_queue: str) -> tuple[Queue, Queue]:
    """The deployment's two durable queues, each behind an exchange of its name.

    On RabbitMQ the exchanges are topic exchanges (native delayed delivery
    routes a retry's countdown through them) and the queues quorum queues.
    """
    amqp = broker_kind(url) is BrokerKind.AMQP
    exchange_type = "topic" if amqp else "direct"
    arguments = dict(QUORUM) if amqp else None
    return tuple(
        Queue(name, Exchange(name, type=exchange_type, durable=True), routing_key=name,
              durable=True, queue_arguments=arguments)
        for name in (default_queue, long_queue(default_queue))
    )


def task_routes(default_queue: str, long_tasks: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each long task to the long queue; everything else stays on the default."""
    return {name: {"queue": long_queue(default_queue)} for name in long_tasks}


def celery_conf(url: str, default_queue: str, long_tasks: Iterable[str]) -> dict[str, Any]:
    """The broker's part of the Celery configuration."""
    conf: dict[str, Any] = {
        "broker_url": url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4,
        "broker_transport_options": transport_options(url),
        # The same short retries for a task's publish (the default policy,
        # spelt out so a reader sees it fails within about two seconds).
        "task_publish_retry": True,
        "task_publish_retry_policy": dict(RETRY_OPTIONS),
        "task_default_queue": default_queue,
        "task_default_exchange": default_queue,
        "task_default_routing_key": default_queue,
        "task_queues": task_queues(url, default_queue),
        "task_routes": task_routes(default_queue, long_tasks),
        # Messages survive a broker restart (persistent, on durable queues).
        "task_default_delivery_mode": "persistent",
    }
    if broker_kind(url) is BrokerKind.AMQP:
        conf.update(
            broker_heartbeat=AMQP_HEARTBEAT,
            task_default_exchange_type="topic",
            task_default_queue_type="quorum",
            # A queue named only on a worker's -Q: the same kind as ours.
            task_create_missing_queue_type="quorum",
            task_create_missing_queue_exchange_type="topic",
            broker_native_delayed_delivery_queue_type="quorum",
            # Celery turns global QoS off for quorum queues (RabbitMQ refuses it).
            worker_detect_quorum_queues=True,
        )
    return conf
