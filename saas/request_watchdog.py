"""End a web worker that is stuck in one request, or that lost its master.

What gunicorn's workers and arbiter did, for ``saas-web`` (Granian):

* **A stuck request** (gunicorn's worker ``timeout``). Every call the service
  makes has its own timeout (Redis, PostgreSQL, the tenant's endpoint), so
  this is the last resort for what slipped past them: a request older than
  ``timeout`` seconds makes the worker log the route and exit, and the
  server (``respawn_failed_workers``) starts a new one.
* **An orphan.** Granian's workers outlive a master killed with SIGKILL and
  keep serving on its port; a gunicorn worker exits when its parent changes.
  So does this one, between requests.

A daemon thread looks once a second.
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
    def __init__(self, app, timeout: float, interval: float = 1.0,
                 parent: int | None = None) -> None:
        self.app = app
        self.timeout = timeout
        self.interval = interval
        # The master's pid as the master told it (``saas.serve``): a worker
        # still building the app when the master died is re-parented already.
        self.parent = os.getppid() if parent is None else parent
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

    def orphaned(self) -> bool:
        """Whether the master is gone (the worker was re-parented) and no request runs."""
        return os.getppid() != self.parent and not self._running

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            if self.orphaned():
                log.warning("request watchdog: the server's master is gone; the worker exits")
                logging.shutdown()
                os._exit(0)
            path = self.stuck(time.monotonic())
            if path is not None:
                log.critical("request watchdog: a request ran over %ss; the worker exits "
                             "and is replaced", self.timeout, extra={"path": redact_path(path)})
                logging.shutdown()
                os._exit(EXIT_STUCK)
