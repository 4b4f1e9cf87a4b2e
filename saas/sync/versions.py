"""Field versions: ``<login time, 15-digit ms>.<event id, 32 hex>``.

Fixed-width text that orders by login time first and by the event's id on a
tie, and compares the same way in Python, in PostgreSQL (``COLLATE "C"``) and
in Redis' Lua. Two different events never share a version, so a field's
winner never depends on the order or the repetition of events.
"""

from __future__ import annotations

import uuid


def field_version(login_at_ms: int, event_id: str | uuid.UUID) -> str:
    """``event_id`` as a UUID or its canonical (lower-case, dashed) text."""
    hex_id = event_id.hex if isinstance(event_id, uuid.UUID) else event_id.replace("-", "")
    return f"{login_at_ms:015d}.{hex_id}"
