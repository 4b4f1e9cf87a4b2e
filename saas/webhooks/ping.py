"""The "Send test event" of the dashboard and the management API: a signed ``ping``, now.

The ping is posted in the request, signed like every event (a rotated-out
secret in its grace period signs too), through the same SSRF guard and sender,
and its outcome is the answer: status, latency, the start of the receiver's
answer, the error. It is not an outbox event: nothing is stored, retried or
counted against the endpoint's health, and a disabled endpoint can be tested
too — check a receiver before enabling it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from saas.crypto import SecretBox
from saas.db import utcnow
from saas.webhooks.delivery import Policy, event_body, signed_post
from saas.webhooks.endpoints import previous_valid_until
from saas.webhooks.models import WebhookEndpoint, WebhookEvent
from saas.webhooks.sender import SendResult

PING = "ping"


@dataclass(frozen=True)
class PingOutcome:
    event_id: uuid.UUID
    result: SendResult

    def as_dict(self) -> dict[str, Any]:
        result = self.result
        return {"event_id": str(self.event_id), "ok": result.ok,
                "status_code": result.status_code, "latency_ms": result.latency_ms,
                "response_snippet": result.snippet, "error": result.error}

    def sentence(self) -> str:
        """The outcome in words, for the dashboard."""
        result = self.result
        if result.ok:
            return (f"Test event sent: the receiver answered HTTP {result.status_code} "
                    f"in {result.latency_ms} ms.")
        return f"Test event not accepted after {result.latency_ms} ms: {result.error}."


def send_ping(endpoint: WebhookEndpoint, public_app_id: str, box: SecretBox,
              policy: Policy) -> PingOutcome:
    """Post a ``ping`` event (``data.webhook_id``) to the endpoint and say how it went."""
    now = utcnow()
    event = WebhookEvent(id=uuid.uuid4(), app_id=endpoint.app_id, type=PING, created_at=now,
                         data={"webhook_id": str(endpoint.id)})
    previous = endpoint.previous_secret_ciphertext \
        if previous_valid_until(endpoint, now) is not None else None
    result = signed_post(endpoint.url, event_body(event, public_app_id), event.id,
                         endpoint.secret_ciphertext, previous, box, policy)
    return PingOutcome(event.id, result)
