"""Unpadded base64url and strict JSON objects: the encodings of JWTs, cursors and digests.

Every decoder raises :class:`Malformed`, whose text says what the input is
not ("not base64url", "not valid JSON", "not a JSON object"); callers turn it
into their own refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 32  # deeper JSON is malformed (and would exhaust the parser's recursion)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class Malformed(ValueError):
    """The input is not in the expected encoding; ``str()`` says what it is not."""


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, canonical: bool = True) -> bytes:
    """Decode unpadded base64url; unless told otherwise, only its one canonical spelling
    (the unused low bits of the last character zero), so one value has one text."""
    try:
        if not _B64URL.fullmatch(text):
            raise ValueError("not base64url")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if canonical and b64url_encode(raw) != text:
            raise ValueError("not canonical")
    except ValueError:  # binascii.Error included
        raise Malformed("not base64url") from None
    return raw


def b64url_decode_lenient(text: str) -> bytes:
    """Decode base64url as Python's forgiving decoder does: padding optional, characters
    outside the alphabet skipped. For inputs that have always been read this way."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise Malformed("not base64url") from None


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _finite(text: str) -> float:
    """Parse a JSON number; NaN, Infinity and overflowing floats are refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


# One decoder for every call: building one per call (what ``json.loads`` with
# hooks does) cost as much as the parse of a token's claims.
_STRICT = json.JSONDecoder(
    object_pairs_hook=_refuse_duplicates, parse_constant=_finite, parse_float=_finite
)


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting of JSON text, ignoring brackets inside strings."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep: skip the character loop
    depth = peak = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            peak = max(peak, depth)
        elif char in "]}":
            depth -= 1
    return peak


def json_object(raw: bytes) -> dict:
    """Parse a JSON object strictly: UTF-8, no duplicate keys, NaN or deep nesting."""
    try:
        text = raw.decode("utf-8")
        if _nesting_depth(text) > MAX_JSON_DEPTH:
            raise ValueError("too deeply nested")
        value = _STRICT.decode(text)  # a leading BOM is not JSON either
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise Malformed("not valid JSON") from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value
