"""The development server's own worker: a thread that drains events and delivers
webhooks every second.

``make run`` has no Celery worker (eager mode, no beat), so with
``saas.sync.embedded = true`` the web process does the workers' periodic work
itself: drain every event stream shard into the database (``saas.sync.drain``,
taking the shards under their leases like a worker run), then
send the webhook deliveries that are due (``saas.webhooks.delivery``, retries
included). A dashboard or API action that stages an event wakes the thread
after its commit (``saas.webhooks.dispatch.kick_after_commit``), so its
webhook goes out at once. Never on in production: there the workers do it.
"""

from __future__ import annotations

import logging
import os
import threading

from saas.sync.drain import drain
from saas.sync.shards import leased_shards
from saas.webhooks.delivery import Policy, deliver_due
from saas.webhooks.dispatch import EMBEDDED_WAKE

log = logging.getLogger(__name__)
INTERVAL = 1.0


def _run(registry, stop: threading.Event, wake: threading.Event) -> None:
    settings = registry.settings
    layout = registry["saas.event_streams"]
    policy = Policy.from_settings(settings)
    while True:
        wake.wait(INTERVAL)
        if stop.is_set():
            return
        wake.clear()  # a kick from now on wakes the next round
        try:
            with leased_shards(registry["saas.redis"], layout, f"embedded:{os.getpid()}",
                               limit=len(layout.named_keys()),
                               reclaim_idle_ms=settings["saas.sync.reclaim_idle_ms"]) as taken:
                drain(taken.rotation, registry["saas.db_sessionmaker"],
                      settings["saas.sync.batch_size"])
        except Exception:
            log.exception("embedded sync failed; retrying in %s s", INTERVAL)
        try:
            deliver_due(registry["saas.db_sessionmaker"], registry["saas.secret_box"], policy,
                        time_budget=INTERVAL)
        except Exception:
            log.exception("embedded webhook delivery failed; retrying in %s s", INTERVAL)


def includeme(config) -> None:
    if not config.registry.settings["saas.sync.embedded"]:
        return
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=_run, args=(config.registry, stop, wake), daemon=True,
                              name="bridgekeeper-embedded-sync")
    config.registry["saas.sync.embedded_stop"] = stop
    config.registry[EMBEDDED_WAKE] = wake
    thread.start()
