"""Delivering committed webhook events: claim, send, record, retry, disable.

1. **Claim** due deliveries of enabled endpoints, oldest first, with ``FOR
   UPDATE SKIP LOCKED`` (workers never take the same row); a disabled
   endpoint's deliveries are held, never claimed. Push each one's
   ``next_attempt_at`` a lease ahead, count the attempt, commit. A worker that
   dies mid-send leaves the row to come due again when the lease ends: delivery
   is at-least-once, and the event id lets receivers deduplicate.
2. **Send** outside any transaction (``saas.webhooks.sender``), a few at a time.
3. **Record** the attempt (status, latency, snippet, error). A 2xx answer marks
   the delivery delivered; otherwise the next attempt is scheduled with
   exponential backoff and jitter until ``retry_for`` seconds after the
   delivery's window opened (the last attempt lands at that moment), then it is
   ``failed``. An endpoint whose attempts have all failed for ``disable_after``
   seconds (and at least ``disable_min_failures`` times) is disabled, with the
   reason shown on the dashboard.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.crypto import SecretBox
from saas.db import utcnow
from saas.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from saas.webhooks.sender import SendResult, post_event
from saas.webhooks.signing import signature_header

log = logging.getLogger(__name__)

BATCH = 20
SENDERS = 8
LEASE_MARGIN = 30.0  # seconds beyond the send timeout before a claim comes due again


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC (SQLite hands back naive UTC times)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Policy:
    retry_base: float = 15.0
    retry_cap: float = 6 * 3600.0
    retry_for: float = 24 * 3600.0
    timeout: float = 5.0
    disable_after: float = 24 * 3600.0
    disable_min_failures: int = 10
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Policy:
        return cls(
            retry_base=settings["saas.webhooks.retry_base"],
            retry_cap=settings["saas.webhooks.retry_cap"],
            retry_for=settings["saas.webhooks.retry_for"],
            timeout=settings["saas.webhooks.timeout"],
            disable_after=settings["saas.webhooks.disable_after"],
            disable_min_failures=settings["saas.webhooks.disable_min_failures"],
            allow_private=settings["saas.backchannel.allow_private"],
        )


def backoff(failed_attempts: int, policy: Policy,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt: base·2^(n−1), capped, with equal jitter
    (between half and all of it), so receivers coming back are not stampeded."""
    exponent = min(max(failed_attempts - 1, 0), 32)
    delay = min(policy.retry_cap, policy.retry_base * 2 ** exponent)
    return delay / 2 + rand() * delay / 2


def next_attempt(retry_from: dt.datetime, now: dt.datetime, failed_attempts: int,
                 policy: Policy, rand: Callable[[], float] = random.random
                 ) -> dt.datetime | None:
    """When to try again, or None when the retry window is over (give up)."""
    window_end = as_utc(retry_from) + dt.timedelta(seconds=policy.retry_for)
    if now >= window_end:
        return None
    return min(now + dt.timedelta(seconds=backoff(failed_attempts, policy, rand)), window_end)


def event_body(event: WebhookEvent, public_app_id: str) -> bytes:
    """The JSON body; the same bytes on every attempt of the event."""
    return json.dumps({
        "id": str(event.id), "type": event.type,
        "created_at": as_utc(event.created_at).isoformat().replace("+00:00", "Z"),
        "app_id": public_app_id, "data": event.data,
    }, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    url: str
    secret_ciphertext: str
    body: bytes
    previous_ciphertext: str | None = None  # a rotated-out secret in its grace period


def claim_due(session: Session, now: dt.datetime, policy: Policy,
              limit: int = BATCH) -> list[Claim]:
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint, App.app_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(App, App.id == WebhookEndpoint.app_id)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING,
               WebhookDelivery.next_attempt_at <= now, WebhookEndpoint.enabled)
        # Held deliveries all come due at once on enabling: oldest event first then
        # (an incremental sort of the rows due at the same moment).
        .order_by(WebhookDelivery.next_attempt_at, WebhookEvent.created_at,
                  WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    ).all()
    lease = dt.timedelta(seconds=policy.timeout + LEASE_MARGIN)
    claims = []
    for delivery, event, endpoint, public_app_id in rows:
        delivery.next_attempt_at = now + lease
        delivery.attempts += 1
        previous = endpoint.previous_secret_ciphertext
        until = endpoint.previous_secret_valid_until
        if previous and (until is None or as_utc(until) <= now):
            previous = None
        claims.append(Claim(delivery.id, endpoint.id, event.id, endpoint.url,
                            endpoint.secret_ciphertext, event_body(event, public_app_id),
                            previous))
    return claims


def signed_post(url: str, body: bytes, event_id: uuid.UUID, secret_ciphertext: str,
                previous_ciphertext: str | None, box: SecretBox, policy: Policy) -> SendResult:
    """POST ``body`` signed with the endpoint's secret (and a rotated-out one in its grace)."""
    secret = box.decrypt(secret_ciphertext)
    previous = box.decrypt(previous_ciphertext) if previous_ciphertext else None
    header = signature_header(secret, int(time.time()), body, previous)
    return post_event(url, body, header, str(event_id), allow_private=policy.allow_private,
                      timeout=policy.timeout)


def send(claim: Claim, box: SecretBox, policy: Policy) -> SendResult:
    return signed_post(claim.url, claim.body, claim.event_id, claim.secret_ciphertext,
                       claim.previous_ciphertext, box, policy)


def record(session: Session, claim: Claim, result: SendResult, now: dt.datetime,
           policy: Policy) -> None:
    """The attempt, the delivery's new state and the endpoint's health, in one go."""
    delivery = session.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
    if delivery is None:
        return  # the endpoint (and its deliveries) was deleted meanwhile
    session.add(WebhookAttempt(delivery_id=delivery.id, at=now, ok=result.ok,
                               status_code=result.status_code, latency_ms=result.latency_ms,
                               response_snippet=result.snippet, error=result.error))
    if result.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == claim.endpoint_id)
                        .values(consecutive_failures=0, failing_since=None))
        return
    delivery.next_attempt_at = next_attempt(delivery.retry_from, now, delivery.attempts, policy)
    if delivery.next_attempt_at is None:
        delivery.status = DeliveryStatus.FAILED
    _count_failure(session, claim.endpoint_id, now, policy)


def _count_failure(session: Session, endpoint_id: uuid.UUID, now: dt.datetime,
                   policy: Policy) -> None:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        return
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    failing_for = (now - as_utc(endpoint.failing_since)).total_seconds()
    if (endpoint.enabled and failing_for >= policy.disable_after
            and endpoint.consecutive_failures >= policy.disable_min_failures):
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Disabled automatically: {endpoint.consecutive_failures} attempts in a row "
            f"failed over {_duration(failing_for)}. Fix the receiver, then enable it again: "
            "its events wait for it meanwhile and go out then.")
        log.warning("webhooks: endpoint %s disabled after %d failures", endpoint.id,
                    endpoint.consecutive_failures)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def deliver_due(session_factory: Callable[[], Session], box: SecretBox, policy: Policy,
                time_budget: float = 10.0) -> dict[str, int]:
    """Claim and send batches until none is due or the budget is spent."""
    deadline = time.monotonic() + time_budget
    counts = {"delivered": 0, "failed": 0}
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="bk-webhook") as senders:
        while time.monotonic() < deadline:
            with session_factory() as session, session.begin():
                claims = claim_due(session, utcnow(), policy)
            if not claims:
                break
            results = list(senders.map(lambda c: send(c, box, policy), claims))
            with session_factory() as session, session.begin():
                now = utcnow()
                for claim, result in zip(claims, results, strict=True):
                    record(session, claim, result, now, policy)
                    counts["delivered" if result.ok else "failed"] += 1
    return counts
