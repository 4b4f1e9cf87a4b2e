"""The development server's own sync: a thread that drains events every second.

``make run`` has no Celery worker (eager mode, no beat), so with
``saas.sync.embedded = true`` the web process drains the stream itself. Never
on in production: there the workers do it.
"""

from __future__ import annotations

import logging
import os
import threading

from saas.sync.drain import drain
from saas.sync.stream import EventStream

log = logging.getLogger(__name__)
INTERVAL = 1.0


def _run(registry, stop: threading.Event) -> None:
    settings = registry.settings
    stream = EventStream(registry["saas.redis"], registry["saas.redis_keys"],
                         f"embedded:{os.getpid()}",
                         reclaim_idle_ms=settings["saas.sync.reclaim_idle_ms"])
    while not stop.wait(INTERVAL):
        try:
            drain(stream, registry["saas.db_sessionmaker"],
                  settings["saas.sync.batch_size"])
        except Exception:
            log.exception("embedded sync failed; retrying in %s s", INTERVAL)


def includeme(config) -> None:
    if not config.registry.settings["saas.sync.embedded"]:
        return
    stop = threading.Event()
    thread = threading.Thread(target=_run, args=(config.registry, stop), daemon=True,
                              name="bridgekeeper-embedded-sync")
    config.registry["saas.sync.embedded_stop"] = stop
    thread.start()
