"""One-line JSON logs that carry the current request's id."""

from __future__ import annotations

import hashlib
import logging

from pyramid.threadlocal import get_current_request
from pythonjsonlogger.json import JsonFormatter

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


class BridgekeeperJsonFormatter(JsonFormatter):
    def __init__(self, fmt=None, *args, **kwargs) -> None:
        # logging.config.fileConfig passes the ini's (empty) format positionally.
        kwargs.setdefault("timestamp", True)
        super().__init__(fmt or "%(levelname)s %(name)s %(message)s %(request_id)s",
                         *args, **kwargs)

    def add_fields(self, log_record, record, message_dict) -> None:
        if getattr(record, "request_id", None) is None:
            record.request_id = getattr(get_current_request(), "request_id", None)
        super().add_fields(log_record, record, message_dict)


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
