"""Opaque page cursors for keyset pagination (users, audit, webhook deliveries).

A cursor is the sort key of the last row of a page, as base64url JSON; callers
check the parts they get back and raise :class:`BadCursor` when they do not fit.
"""

from __future__ import annotations

import json
from typing import Any

from saas.jwt.codec import b64url_decode_lenient, b64url_encode


class BadCursor(ValueError):
    """A cursor that this service did not make."""


def encode_cursor(*parts: Any) -> str:
    return b64url_encode(json.dumps(parts).encode())


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The ``size`` parts of a cursor this service made, else :class:`BadCursor`."""
    try:
        parts = json.loads(b64url_decode_lenient(cursor))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(cursor) from exc
    if not isinstance(parts, list) or len(parts) != size:
        raise BadCursor(cursor)
    return parts
