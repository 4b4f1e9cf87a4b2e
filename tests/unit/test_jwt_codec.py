"""Unpadded base64url and strict JSON objects, shared by tokens, cursors and digests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saas.jwt.codec import (
    Malformed,
    b64url_decode,
    b64url_decode_lenient,
    b64url_encode,
    json_object,
)


@given(st.binary(max_size=100))
def test_encoding_is_unpadded_and_round_trips(raw):
    text = b64url_encode(raw)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == raw == b64url_decode_lenient(text)


def test_only_the_canonical_spelling_decodes_strictly():
    text = b64url_encode(b"\xff")  # "_w": the low bits of "w" are unused
    twin = text[:-1] + "x"
    assert b64url_decode_lenient(twin) == b"\xff"
    assert b64url_decode(twin, canonical=False) == b"\xff"
    with pytest.raises(Malformed, match="not base64url"):
        b64url_decode(twin)


@pytest.mark.parametrize("text", ["_w==", "+w", "a b", "A"])
def test_padding_foreign_alphabets_and_impossible_lengths_are_not_base64url(text):
    with pytest.raises(Malformed, match="not base64url"):
        b64url_decode(text)


def test_the_lenient_decoder_reads_what_python_always_read():
    assert b64url_decode_lenient("_w==") == b"\xff" == b64url_decode_lenient("/w")
    with pytest.raises(Malformed):
        b64url_decode_lenient("A")


@pytest.mark.parametrize(("raw", "problem"), [
    (b'{"a":1,"a":2}', "not valid JSON"),
    (b'{"a":NaN}', "not valid JSON"),
    (b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", "not valid JSON"),
    (b"\xff{}", "not valid JSON"),
    (b"[1]", "not a JSON object"),
])
def test_json_objects_are_strict(raw, problem):
    with pytest.raises(Malformed, match=problem):
        json_object(raw)
    assert json_object(b'{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}
