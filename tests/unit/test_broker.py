"""Which Celery options land for which broker (saas/broker.py, saas/tasks.py).

No broker is contacted: building a Celery app only reads its configuration.
"""

from __future__ import annotations

import pytest

from saas.broker import BrokerKind, broker_kind, long_queue
from saas.tasks import BEAT_SCHEDULE, LONG_TASKS, TaskName, make_celery

AMQP = "amqp://guest:guest@localhost:5672//"
REDIS = "redis://localhost:6379/0"
QUEUE = "bk-unit"


def _app(app_settings, url: str):
    return make_celery({**app_settings, "celery.broker_url": url,
                        "celery.default_queue": QUEUE}, set_as_current=False)


@pytest.mark.parametrize(("url", "kind"), [
    (AMQP, BrokerKind.AMQP), ("amqps://h:5671//", BrokerKind.AMQP),
    ("pyamqp://h//", BrokerKind.AMQP), (REDIS, BrokerKind.REDIS),
    ("rediss://h:6380/0", BrokerKind.REDIS), ("unix:///run/redis.sock", BrokerKind.REDIS),
    ("memory://", BrokerKind.OTHER),
])
def test_the_broker_kind_comes_from_the_scheme(url, kind):
    assert broker_kind(url) is kind


def test_amqp_gets_confirms_and_heartbeats_and_no_redis_options(app_settings):
    conf = _app(app_settings, AMQP).conf
    options = conf.broker_transport_options
    assert options["confirm_publish"] is True
    assert "socket_connect_timeout" not in options
    assert options["max_retries"] == 3  # fail fast when RabbitMQ is down
    assert conf.broker_heartbeat == 30
    assert conf.broker_connection_timeout == 4
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_publish_retry is True
    assert conf.task_publish_retry_policy["max_retries"] == 3


def test_redis_gets_its_socket_timeout_and_no_amqp_options(app_settings):
    options = _app(app_settings, REDIS).conf.broker_transport_options
    assert options["socket_connect_timeout"] == 4
    assert "confirm_publish" not in options
    assert options["max_retries"] == 3


def test_the_memory_broker_gets_neither(app_settings):
    options = _app(app_settings, "memory://").conf.broker_transport_options
    assert "confirm_publish" not in options and "socket_connect_timeout" not in options


def test_amqp_queues_are_durable_quorum_queues_behind_topic_exchanges(app_settings):
    conf = _app(app_settings, AMQP).conf
    queues = {queue.name: queue for queue in conf.task_queues}
    assert set(queues) == {QUEUE, long_queue(QUEUE)}
    for name, queue in queues.items():
        assert queue.durable and not queue.auto_delete and not queue.exclusive
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        # Native delayed delivery (a mail retry's countdown) needs a topic exchange.
        assert (queue.exchange.name, queue.exchange.type) == (name, "topic")
        assert queue.routing_key == name
    assert conf.task_default_queue_type == "quorum"
    assert conf.task_default_exchange_type == "topic"
    assert conf.task_default_delivery_mode == "persistent"


def test_redis_queues_keep_the_plain_layout(app_settings):
    queues = {q.name: q for q in _app(app_settings, REDIS).conf.task_queues}
    assert set(queues) == {QUEUE, long_queue(QUEUE)}
    assert all(q.queue_arguments is None and q.exchange.type == "direct"
               for q in queues.values())


@pytest.mark.parametrize("url", [AMQP, REDIS])
def test_long_tasks_go_to_the_long_queue_and_the_rest_to_the_default(app_settings, url):
    app = _app(app_settings, url)
    routed = {name: app.amqp.router.route({}, name.value)["queue"].name for name in TaskName}
    long = long_queue(QUEUE)
    assert routed == {name: long if name in LONG_TASKS else QUEUE for name in TaskName}
    # The sync drain must never wait behind a webhook or a mail.
    assert routed[TaskName.DRAIN_EVENTS] == QUEUE
    assert {TaskName.DELIVER_WEBHOOKS, TaskName.SEND_MAIL} <= LONG_TASKS


@pytest.mark.parametrize("url", [AMQP, REDIS])
def test_tasks_are_acknowledged_after_the_run_one_at_a_time(app_settings, url):
    conf = _app(app_settings, url).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit == 300


def test_every_beat_entry_expires_within_its_period():
    for entry in BEAT_SCHEDULE.values():
        assert 0 < entry["options"]["expires"] <= entry["schedule"]
