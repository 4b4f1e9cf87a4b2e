"""Shared set-up of the webhook tests (no tests here): endpoints, events and
deliveries made through the same services and tables the product uses, and a
receiver that a test runs on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from saas.apps.models import App
from saas.db import utcnow
from saas.webhooks.endpoints import create_endpoint
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.live import serve_wsgi

HOOK_URL = "https://hooks.example.com/bridgekeeper"


def add_webhook(db, secret_box, app: App, url: str = HOOK_URL,
                events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """An endpoint (all events unless told) and its plaintext secret."""
    return create_endpoint(db, secret_box, app, {"url": url,
                                                 "events": list(events or EVENT_TYPES)})


def add_delivery(db, endpoint: WebhookEndpoint, type_: str = "user.created",
                 data: dict[str, Any] | None = None, **fields: Any) -> WebhookDelivery:
    """A committed-looking event of the endpoint's app and its pending delivery."""
    now = utcnow()
    event = WebhookEvent(id=uuid.uuid4(), app_id=endpoint.app_id, type=type_,
                         created_at=now, data=data or {"user_id": None})
    db.add(event)
    db.flush()  # before its delivery: no ORM relationship orders the inserts
    fields.setdefault("next_attempt_at", now)
    fields.setdefault("retry_from", now)
    fields.setdefault("created_at", now - dt.timedelta(microseconds=1))
    delivery = WebhookDelivery(event_id=event.id, endpoint_id=endpoint.id, **fields)
    db.add(delivery)
    db.flush()
    return delivery


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver: records every request; ``answer`` picks the status."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received, int], int] = lambda request, n: 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        request = Received(body, headers)
        with self.lock:
            self.requests.append(request)
            status = self.answer(request, len(self.requests))
        start_response(f"{status} Status", [("Content-Type", "text/plain")])
        return [f"answered {status} to request {len(self.requests)}".encode()]

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.requests]


@contextlib.contextmanager
def running_receiver(path: str = "/hooks") -> Iterator[Receiver]:
    receiver = Receiver()
    with serve_wsgi(receiver.wsgi) as base_url:
        receiver.url = base_url + path
        yield receiver
