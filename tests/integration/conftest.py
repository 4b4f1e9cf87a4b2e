"""Fixtures of the integration tests that run a real Celery worker."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import _state as celery_state

from saas.tasks import BridgekeeperCelery, make_celery


@pytest.fixture
def make_worker_app(app_settings) -> Iterator:
    """Non-eager apps on the real broker, each on the queue given or one of its own."""
    made: list[tuple[BridgekeeperCelery, str]] = []
    previous = (celery_state.default_app, celery_state._tls.current_app)
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)

    def make(smtp_url: str, queue: str | None = None) -> BridgekeeperCelery:
        queue = queue or f"bk-test-mail-{uuid.uuid4().hex}"
        # The queue by the setting, so its ".long" sibling is this test's too.
        app = make_celery({**app_settings, "celery.always_eager": "false",
                           "celery.default_queue": queue, "saas.smtp_url": smtp_url})
        app.conf.update(worker_enable_remote_control=False, worker_hijack_root_logger=False)
        made.append((app, queue))
        return app

    try:
        yield make
    finally:
        celery_state.set_default_app(previous[0])
        celery_state._set_current_app(previous[1])
        root.setLevel(root_level)
        root.handlers[:] = root_handlers
        client = redis.Redis.from_url(app_settings["celery.broker_url"])
        for app, queue in made:
            app.dispose_engine()
            for key in client.scan_iter(match=f"*{queue}*"):
                client.delete(key)
        client.close()
