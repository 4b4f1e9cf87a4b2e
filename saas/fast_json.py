"""JSON for the hot path: orjson, and plain json for what orjson refuses.

orjson writes a login's records and answers in a fraction of the standard
library's time; it refuses integers beyond 64 bits, which a tenant may put in
``custom`` or a client in ``data``, so those fall back to ``json``. Both read
back the same with ``json.loads``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
