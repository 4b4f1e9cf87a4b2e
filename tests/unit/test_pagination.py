"""Page cursors: what the service made reads back; anything else is BadCursor."""

from __future__ import annotations

import pytest

from saas.jwt.codec import b64url_encode
from saas.pagination import BadCursor, decode_cursor, encode_cursor


def test_a_cursor_reads_back_its_parts():
    cursor = encode_cursor(1764800000000, "0b6f0d0e-0000-4000-8000-000000000000")
    assert decode_cursor(cursor, 2) == [1764800000000, "0b6f0d0e-0000-4000-8000-000000000000"]
    assert "=" not in cursor  # unpadded base64url: safe in a query string as is


@pytest.mark.parametrize("cursor", [
    "not base64 at all!",
    b64url_encode(b"\xff\xfe"),  # not UTF-8
    b64url_encode(b"{not json"),
    b64url_encode(b'{"a": 1}'),  # JSON, but not a list
    encode_cursor("only one part"),  # a list of the wrong size
])
def test_anything_else_is_a_bad_cursor(cursor):
    with pytest.raises(BadCursor):
        decode_cursor(cursor, 2)
