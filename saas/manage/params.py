"""Reading the management API's inputs: JSON bodies and query parameters."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from saas.errors import ApiError, ManageReason
from saas.manage.errors import invalid_parameter
from saas.request_body import read_params

_DIGITS = re.compile(r"[0-9]{1,6}")


def json_body(request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; with ``optional``, no body at all is ``{}``."""
    if optional and not request.body:
        return {}
    try:
        return read_params(request, allow_form=False)
    except ApiError as exc:
        if exc.status != 400:
            raise  # 413 payload_too_large stays as it is
        raise ApiError(400, "invalid_request", ManageReason.INVALID_BODY,
                       "the body must be a JSON object sent as application/json") from exc


def limit_param(request, *, default: int, maximum: int) -> int:
    raw = request.GET.get("limit")
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise invalid_parameter("limit", f"must be a whole number from 1 to {maximum}")
    return int(raw)


def text_param(request, name: str, *, max_length: int = 255) -> str:
    value = request.GET.get(name, "")
    if len(value) > max_length or any(ord(c) < 0x20 for c in value):
        raise invalid_parameter(name, f"must be text of at most {max_length} characters")
    return value


def cursor_param(request) -> str | None:
    value = text_param(request, "cursor", max_length=512)
    return value or None


def choice_param(request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = request.GET.get(name) or default
    if value is not None and value not in choices:
        raise invalid_parameter(name, "must be one of " + ", ".join(choices))
    return value


def uuid_param(request, name: str) -> uuid.UUID | None:
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise invalid_parameter(name, "must be a user id (UUID)") from None


def time_param(request, name: str) -> dt.datetime | None:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "+") if "T" in raw else raw)
    except ValueError:
        raise invalid_parameter(name, "must be an ISO 8601 time, e.g. 2025-01-31T12:00:00Z") \
            from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
