"""One-line JSON logs that carry the current request's id."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import orjson
from pyramid.threadlocal import get_current_request

from saas.request_text import raw_path

#: Paths whose next segment is a credential (a single-use link's token). Every
#: route with a ``{token}`` in its pattern must start with one of these (a test
#: checks it); prefixes of links still to come are listed so that even their
#: 404s, before the routes exist, log no token.
TOKEN_PATH_PREFIXES: tuple[str, ...] = (
    "/dashboard/invite/",
    "/dashboard/verify/",
    "/dashboard/reset/",
    "/dashboard/email/confirm/",
)


def redact_path(path: str) -> str:
    """The path with a link token replaced by ``~`` and 12 hex digits of its
    SHA-256: one link's lines still correlate, the token cannot be replayed."""
    for prefix in TOKEN_PATH_PREFIXES:
        if path.startswith(prefix):
            token, slash, rest = path[len(prefix):].partition("/")
            if not token:
                return path
            digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]
            return f"{prefix}~{digest}{slash}{rest}"
    return path


# A record's own attributes; everything else on it came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id"}


class BridgekeeperJsonFormatter(logging.Formatter):
    """One JSON object per line: level, logger, message, request id, the
    record's ``extra`` fields and an ISO timestamp; a traceback as ``exc_info``.

    Written with orjson: python-json-logger took 24 µs a line here, about 3 %
    of a login request's CPU (the access log writes a line per request).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # logging.config.fileConfig passes the ini's (empty) format: unused.
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            request_id = getattr(get_current_request(), "request_id", None)
        line: dict[str, Any] = {"levelname": record.levelname, "name": record.name,
                                "message": record.getMessage(), "request_id": request_id}
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        line["timestamp"] = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat()
        return orjson.dumps(line, default=str).decode()


def includeme(config) -> None:
    # Right inside the request id, so every answer (413s included) is logged.
    config.add_tween("saas.logging.access_log_tween_factory",
                     under="saas.request_id.request_id_tween_factory")


log = logging.getLogger("saas.access")


def access_log_tween_factory(handler, registry):
    def access_log_tween(request):
        response = handler(request)
        # The path only: query strings carry tokens and states, never logged;
        # a link's token in the path is logged as a hash prefix.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": redact_path(raw_path(request)),
                "status": response.status_code,
                "request_id": getattr(request, "request_id", None),
            },
        )
        return response

    return access_log_tween
