"""The ``Bridgekeeper-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC key is the UTF-8 bytes of the endpoint's whole secret (``whsec_…``);
the message is ``f"{t}.{raw body}"``. Receivers check it with
``saas.webhooks.verify`` or the recipes of docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Bridgekeeper-Signature"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``{timestamp}.{body}`` under the secret."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes,
                     previous: str | None = None) -> str:
    """The header; with ``previous`` (a secret rotated out, still in its grace
    period) a second ``v1`` signed with it, so receivers can switch at leisure."""
    header = f"t={timestamp},v1={signature(secret, timestamp, body)}"
    if previous:
        header += f",v1={signature(previous, timestamp, body)}"
    return header
