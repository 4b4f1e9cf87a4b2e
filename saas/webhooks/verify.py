"""Checking a webhook on the receiving side — the recipe of docs/webhooks.md.

    from saas.webhooks.verify import verify_webhook, InvalidSignature

    try:
        event = verify_webhook(raw_body, headers["Bridgekeeper-Signature"], secret)
    except InvalidSignature:
        return 400
    if seen_before(event["id"]):   # at-least-once: deduplicate on the event id
        return 200

Depends on nothing outside the standard library, so a receiver can copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The header is missing, malformed, too old, or no signature matches."""


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("the signature header is missing or malformed")
    return timestamp, signatures


def verify_webhook(body: bytes, header: str, secret: str, *,
                   tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> dict[str, Any]:
    """The event (parsed JSON) if ``header`` signs ``body`` with ``secret``, recently.

    ``body`` must be the raw bytes as received: re-serialised JSON differs.
    A timestamp more than ``tolerance`` seconds from now (either way) is refused,
    so a captured request cannot be replayed later.
    """
    timestamp, signatures = _parse(header)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("the signature timestamp is outside the tolerance")
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no signature matches")
    return json.loads(body)
