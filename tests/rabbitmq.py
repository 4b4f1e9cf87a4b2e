"""RabbitMQ for the tests: the broker's address, a run's own queues, their cleanup.

Tests share one RabbitMQ (and its ``/`` vhost), so each names its deployment
queue (``celery.default_queue``) uniquely; the queues and exchanges of that
name (the default one and its ``.long`` sibling) are deleted at the end. A
missing broker fails the test with one line, never skips it.
"""

from __future__ import annotations

import os
import uuid

import amqp
import pytest
from kombu import Connection

from saas.broker import long_queue

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@localhost:5672//")


def require_rabbitmq(url: str = AMQP_URL) -> None:
    """Fail (not skip) the calling test when RabbitMQ does not answer."""
    try:
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any reason at all: the test cannot run
        pytest.fail(f"RabbitMQ is required for the tests ({url}): {exc}", pytrace=False)


def queue_name(what: str) -> str:
    return f"bk-test-{what}-{uuid.uuid4().hex[:12]}"


def waiting(queue: str, url: str = AMQP_URL) -> int:
    """Messages ready in ``queue`` (not those a consumer holds); 0 if it is absent."""
    with Connection(url, connect_timeout=5) as conn:
        try:
            return conn.default_channel.queue_declare(queue, passive=True).message_count
        except amqp.exceptions.NotFound:
            return 0


def delete_deployment_queues(default_queue: str, url: str = AMQP_URL) -> None:
    """Delete a test deployment's queues and exchanges (absent ones are fine)."""
    with Connection(url, connect_timeout=5) as conn:
        for name in (default_queue, long_queue(default_queue)):
            # A failed delete closes the channel: a fresh one for each call.
            for delete in ("queue_delete", "exchange_delete"):
                channel = conn.channel()
                try:
                    getattr(channel, delete)(name)
                except amqp.exceptions.NotFound:
                    pass
                finally:
                    if channel.is_open:
                        channel.close()
