"""Gunicorn settings, read from the working directory by ``gunicorn --paste production.ini``.

Request-size limits match DESIGN §12: tokens travel in URLs, so a request line
of up to 8190 bytes is accepted and the application answers 413 for a token
over 6 KiB. Process counts and proxy trust come from the environment.
``on_starting`` checks the ini's settings before any worker forks, so a missing
secret stops the master with one line instead of a crash loop of workers.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter

# Tokens travel in query strings (DESIGN §12 "URL sizes").
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Sync workers by default; GUNICORN_THREADS > 1 switches to gthread.
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5

# Only trust X-Forwarded-* from the local reverse proxy unless told otherwise.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# The application writes its own JSON access log; gunicorn's is opt-in.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None


class AccessLogOptInLogger(Logger):
    """Gunicorn builds its access-log record for every request whenever a
    logging config is loaded, and ``--paste`` always loads the ini's; the
    record is then dropped (the ini gives ``gunicorn.access`` no handler).
    That cost ~4 % of a login request's CPU in the benchmark's profiles, so
    only an access log asked for with GUNICORN_ACCESS_LOG turns it on."""

    def _compute_access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)

    def atoms(self, resp, req, environ, request_time):
        """Gunicorn's atoms with link tokens hashed and no query string, as in
        the application's own access log (docs/security.md)."""
        from saas.logging import redact_path

        atoms = super().atoms(resp, req, environ, request_time)
        path = redact_path(environ.get("RAW_URI", "").partition("?")[0])
        atoms["U"] = redact_path(environ.get("PATH_INFO", ""))
        atoms["q"] = ""
        atoms["r"] = "{} {} {}".format(environ.get("REQUEST_METHOD"), path,
                                       environ.get("SERVER_PROTOCOL"))
        # The environ's own atoms ({raw_uri}e, {path_info}e …) likewise.
        for name in ("raw_uri", "request_uri"):
            if f"{{{name}}}e" in atoms:
                atoms[f"{{{name}}}e"] = path
        if "{path_info}e" in atoms:
            atoms["{path_info}e"] = atoms["U"]
        if "{query_string}e" in atoms:
            atoms["{query_string}e"] = ""
        return atoms


logger_class = AccessLogOptInLogger
errorlog = "-"

# Gunicorn's runtime control socket (reload, scale, shut down) defaults to one
# path per user, shared by every instance on the host; opt in with a path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def on_starting(server: Arbiter) -> None:
    """Refuse to start with missing or invalid settings, before any worker forks.

    Without this, each worker would fail while loading the app and gunicorn
    would report a worker boot error with a traceback per worker.
    """
    import plaster

    from saas.config import ConfigurationError, load_settings
    from saas.crypto import secret_box_from_settings

    if not server.cfg.paste:
        return
    # app_uri is the paste path made absolute before any ``--chdir``.
    path = getattr(server.app, "app_uri", None) or server.cfg.paste
    try:
        raw = plaster.get_settings(path, "app:main", defaults=server.cfg.paste_global_conf)
        secret_box_from_settings(load_settings(raw))
    except ConfigurationError as exc:
        message = " ".join(str(exc).split())
        print(message, file=sys.stderr, flush=True)
        if server.pidfile is not None:
            server.pidfile.unlink()
        sys.exit(1)
