"""A tenant's changes to an app's webhook endpoints, the same through either door.

Each function makes the change (``saas.webhooks.endpoints``) and writes its
audit row, which names the endpoint; changes that let held deliveries go
wake the delivery workers once the transaction commits. A call that changes
nothing records nothing.
"""

from __future__ import annotations

from typing import Any

from saas.apps.models import App
from saas.audit.types import AuditType
from saas.tenancy.audit import audit
from saas.webhooks import endpoints
from saas.webhooks.delivery import Policy
from saas.webhooks.dispatch import kick_after_commit
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint
from saas.webhooks.ping import PingOutcome, send_ping


def _audit(request, type_: str, app: App, endpoint: WebhookEndpoint, **details: Any) -> None:
    audit(request, type_, tenant_id=app.tenant_id, app=app,
          details={"webhook_id": str(endpoint.id), **details})


def create_webhook(request, app: App, fields: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
    """A new endpoint from checked fields, and its secret in plain text (shown once).

    Raises ``InvalidSetting`` (nothing written) past the endpoints-per-app limit.
    """
    endpoint, secret = endpoints.create_endpoint(request.db, request.secret_box, app, fields)
    _audit(request, AuditType.WEBHOOK_CREATED, app, endpoint, events=endpoint.events)
    return endpoint, secret


def update_webhook(request, app: App, endpoint: WebhookEndpoint,
                   fields: dict[str, Any]) -> list[str]:
    """Apply checked fields (url, events, enabled); returns the names of those changed."""
    changed = endpoints.update_endpoint(endpoint, fields)
    if changed:
        _audit(request, AuditType.WEBHOOK_UPDATED, app, endpoint, fields=sorted(changed))
        request.db.flush()
        if endpoint.enabled:
            kick_after_commit(request)  # deliveries held while it was off resume
    return changed


def delete_webhook(request, app: App, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its delivery log."""
    _audit(request, AuditType.WEBHOOK_DELETED, app, endpoint)
    request.db.delete(endpoint)


def reveal_webhook_secret(request, app: App, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret; revealing is itself audited."""
    _audit(request, AuditType.WEBHOOK_SECRET_REVEALED, app, endpoint)
    return endpoints.reveal_endpoint_secret(endpoint, request.secret_box)


def rotate_webhook_secret(request, app: App, endpoint: WebhookEndpoint,
                          grace_seconds: int = endpoints.DEFAULT_GRACE_SECONDS) -> str:
    """A new signing secret (plain text, shown once); the old one also signs for the grace.

    Raises ``InvalidSetting`` (nothing written) for a grace out of range.
    """
    secret = endpoints.rotate_endpoint_secret(endpoint, request.secret_box, grace_seconds)
    _audit(request, AuditType.WEBHOOK_SECRET_ROTATED, app, endpoint, grace_seconds=grace_seconds)
    return secret


def send_test_event(request, app: App, endpoint: WebhookEndpoint) -> PingOutcome:
    """Send a signed ``ping`` now; the outcome says how the receiver took it."""
    outcome = send_ping(endpoint, app.app_id, request.secret_box,
                        Policy.from_settings(request.registry.settings))
    _audit(request, AuditType.WEBHOOK_TESTED, app, endpoint, ok=outcome.result.ok,
           status_code=outcome.result.status_code)
    return outcome


def resend_delivery(request, app: App, endpoint: WebhookEndpoint,
                    delivery: WebhookDelivery) -> None:
    """Send the same event (same id) again, with a fresh retry window."""
    endpoints.resend(request, delivery)
    _audit(request, AuditType.WEBHOOK_RESENT, app, endpoint, delivery_id=str(delivery.id))
    request.db.flush()
