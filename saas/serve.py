"""``saas-web production.ini``: the web tier on Granian (docs/operations.md, "Web server").

Granian's Rust HTTP/1.1 server hands each request to the WSGI app on one
blocking thread per worker process, as gunicorn's sync workers do, for a
quarter of gunicorn's CPU per request (docs/performance.md, "The WSGI
server"). What gunicorn gave the service, and where it comes from here:

* settings checked before any worker starts: ``saas.config.checked_settings`` (one line
  and exit 1, not a crash loop of workers);
* a slow client cannot hold a worker: Granian reads the request in Rust, with
  ``header_read_timeout``; the app sees a request only once it has arrived;
* request size limits: at most 100 header fields and a head within Granian's
  read buffer (``HEAD_BUFFER_BYTES``; 431 past either), a request line of 8190
  bytes (tokens travel in URLs), bodies capped by the app (``saas.request_body``);
* a stuck request: ``saas.request_watchdog`` ends the worker after
  ``WEB_TIMEOUT`` seconds and Granian starts a new one;
* recycling and reload: ``WEB_MAX_RSS_MIB`` / ``WEB_LIFETIME`` respawn a
  worker, SIGHUP respawns all of them gracefully, SIGTERM drains and stops;
* ``X-Forwarded-Proto`` believed from ``FORWARDED_ALLOW_IPS`` only, and a
  request line over 8190 bytes refused with 414 (``saas.web_edge``);
* no secret in a request's environ (``forget_settings_environment``).

``gunicorn --paste production.ini`` still works (``gunicorn.conf.py``).
"""

from __future__ import annotations

import argparse
import os
import sys

from saas.config import ConfigurationError, checked_settings

DEFAULT_BIND = "0.0.0.0:6543"
# A request line of 8190 bytes (tokens travel in URLs), and headers beside it.
HEAD_BUFFER_BYTES = 64 * 1024
HEADER_READ_TIMEOUT_MS = 30_000
GRACEFUL_TIMEOUT_S = 20
CONFIG_ENV = "SAAS_CONFIG"
MASTER_PID_ENV = "SAAS_WEB_MASTER_PID"  # set by the master for its workers' watchdogs
# Granian's own lines (workers spawned, reloads) as JSON on stderr, like the app's.
GRANIAN_LOGGING = {
    "formatters": {"json": {"()": "saas.logging.BridgekeeperJsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                             "stream": "ext://sys.stderr"}},
    "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def application():
    """Granian's factory, called once in each worker process."""
    from pyramid.paster import get_app, setup_logging

    from saas.request_watchdog import RequestWatchdog
    from saas.web_edge import Edge

    ini = os.environ[CONFIG_ENV]
    setup_logging(ini)
    pyramid_app = get_app(ini, "main")
    settings = pyramid_app.registry.settings
    timeout = float(os.environ.get("WEB_TIMEOUT", "30"))
    forget_settings_environment()
    master = os.environ.get(MASTER_PID_ENV)
    return RequestWatchdog(Edge(pyramid_app, settings["saas.trusted_proxies"]), timeout,
                           parent=int(master) if master else None).start()


def forget_settings_environment(environ=os.environ) -> list[str]:
    """Drop the settings' variables (secrets among them) once the app has read them.

    Granian hands each request a copy of the process environment as the base
    of its WSGI environ; nothing in a request may carry ``SAAS_MASTER_KEY`` or
    a database password. The app reads its settings only when it is built.
    """
    from saas.config import SETTING_ENVIRONMENT

    names = [name for name in environ if name in SETTING_ENVIRONMENT]
    for name in names:
        del environ[name]
    return names


def _bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--bind wants HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="saas-web", description=__doc__.splitlines()[0])
    parser.add_argument("ini", nargs="?", default="production.ini")
    parser.add_argument("-b", "--bind", type=_bind,
                        default=_bind(os.environ.get("WEB_BIND", DEFAULT_BIND)),
                        help=f"HOST:PORT (WEB_BIND, default {DEFAULT_BIND})")
    parser.add_argument("-w", "--workers", type=int,
                        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
                        help="worker processes (WEB_CONCURRENCY, default 2: one per core)")
    args = parser.parse_args(argv)
    ini = os.path.abspath(args.ini)
    try:
        checked_settings(ini)
    except ConfigurationError as exc:
        print(" ".join(str(exc).split()), file=sys.stderr, flush=True)
        return 1
    except FileNotFoundError:
        print(f"no such settings file: {args.ini}", file=sys.stderr, flush=True)
        return 1
    os.environ[CONFIG_ENV] = ini
    os.environ[MASTER_PID_ENV] = str(os.getpid())

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    host, port = args.bind
    Granian(
        "saas.serve:application", factory=True, interface=Interfaces.WSGI,
        address=host, port=port, workers=args.workers, blocking_threads=1,
        http=HTTPModes.http1, websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS,
                                     max_buffer_size=HEAD_BUFFER_BYTES),
        respawn_failed_workers=True, respawn_interval=1.0,
        workers_kill_timeout=GRACEFUL_TIMEOUT_S,
        workers_max_rss=_int_env("WEB_MAX_RSS_MIB"),
        workers_lifetime=_int_env("WEB_LIFETIME"),
        log_access=False, log_dictconfig=GRANIAN_LOGGING,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
