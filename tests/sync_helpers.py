"""Building stream entries the way the login path does, for the sync tests.

``login_entry`` lives in the benchmark package (``bench.entries``), which must
not import the tests; the tests reuse it from there.
"""

from __future__ import annotations

from bench.entries import login_entry

__all__ = ["as_read", "login_entry"]


def as_read(entry: dict[str, str]) -> dict[bytes, bytes]:
    """The entry as XREAD returns it (bytes keys and values)."""
    return {key.encode(): value.encode() for key, value in entry.items()}
