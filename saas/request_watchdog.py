"""End a web worker stuck in one request (gunicorn's worker ``timeout``).

Every call the service makes has its own timeout (Redis, PostgreSQL, the
tenant's endpoint), so this is the last resort for what slipped past them: a
daemon thread looks once a second, and a request older than ``timeout``
seconds makes the worker log the route and exit; the server (Granian with
``respawn_failed_workers``) starts a new worker, as gunicorn's arbiter did.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from saas.logging import redact_path

log = logging.getLogger(__name__)

EXIT_STUCK = 70  # EX_SOFTWARE


class RequestWatchdog:
    def __init__(self, app, timeout: float, interval: float = 1.0) -> None:
        self.app = app
        self.timeout = timeout
        self.interval = interval
        self._running: dict[int, tuple[float, str]] = {}  # thread id -> (start, path)

    def __call__(self, environ, start_response):
        ident = threading.get_ident()
        self._running[ident] = (time.monotonic(), environ.get("PATH_INFO", ""))
        try:
            return self.app(environ, start_response)
        finally:
            self._running.pop(ident, None)

    def start(self) -> RequestWatchdog:
        threading.Thread(target=self._watch, name="request-watchdog", daemon=True).start()
        return self

    def stuck(self, now: float) -> str | None:
        """The path of a request running longer than the timeout, if any."""
        for started, path in list(self._running.values()):
            if now - started > self.timeout:
                return path
        return None

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            path = self.stuck(time.monotonic())
            if path is not None:
                log.critical("request watchdog: a request ran over %ss; the worker exits "
                             "and is replaced", self.timeout, extra={"path": redact_path(path)})
                logging.shutdown()
                os._exit(EXIT_STUCK)
