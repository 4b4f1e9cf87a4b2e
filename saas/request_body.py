"""Reading the parameters of the protocol's POST endpoints (form or JSON).

Shared by the login flows, the token endpoint and the management API, so it
belongs to none of them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from saas.errors import ApiError, Reason
from saas.request_text import is_text

MAX_BODY_BYTES = 64 * 1024


def _too_large() -> ApiError:
    return ApiError(413, "invalid_request", Reason.PAYLOAD_TOO_LARGE, "the body is over 64 KiB")


def read_params(request, *, allow_form: bool = True) -> dict[str, Any]:
    """The body as a dict; 413 when too large, 400 invalid_request when malformed."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise _too_large()
    body = request.body_file.read(MAX_BODY_BYTES + 1) if request.content_length is None \
        else request.body
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            data = json.loads(body or b"null", parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                           "the body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                           "the body must be a JSON object")
        if not is_text(data):  # a "\ud800" escape: a string no UTF-8 can hold
            raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                           "the body holds a string that is not UTF-8 text")
        return data
    if allow_form and content_type == "application/x-www-form-urlencoded":
        return form_fields(body)
    raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                   "send application/json" + (" or a form" if allow_form else ""))


def form_fields(body: bytes) -> dict[str, str]:
    """A urlencoded body's fields, as WebOb's ``request.POST`` reads them
    (blank values kept, ``&`` between fields, a repeated name's last value
    wins in a dict) at a fraction of its cost: WebOb copies the environ, runs
    ``cgi.FieldStorage`` over the body and builds a ``MultiDict``, several
    per cent of a token request's CPU (docs/performance.md, "A form read
    without cgi.FieldStorage"). Bytes that are not UTF-8 never get here
    (``saas.request_text`` refuses them), so ``replace`` replaces nothing."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                          encoding="utf-8", errors="replace"))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def string_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None
