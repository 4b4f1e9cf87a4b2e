"""One-line JSON logs that carry the current request's id."""

from __future__ import annotations

import logging

from pyramid.threadlocal import get_current_request
from pythonjsonlogger.json import JsonFormatter

from saas.request_text import raw_path


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
        # The path only: query strings carry tokens and states, never logged.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": raw_path(request),
                "status": response.status_code,
                "request_id": getattr(request, "request_id", None),
            },
        )
        return response

    return access_log_tween
