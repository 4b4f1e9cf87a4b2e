"""An app's webhook endpoints: create, list, read, update, delete; the secret;
a test event; the delivery log and "resend". (No CSRF: bearer-key API, see
``saas.manage.apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.validation import InvalidSetting
from saas.manage.changes import audit
from saas.manage.contexts import AppScope, DeliveryScope, WebhookScope
from saas.manage.errors import invalid_cursor, invalid_value, unknown_fields
from saas.manage.params import cursor_param, json_body, limit_param
from saas.manage.responses import no_store
from saas.security import Permission
from saas.users.services import BadCursor
from saas.webhooks.delivery import Policy
from saas.webhooks.dispatch import kick_after_commit
from saas.webhooks.endpoints import (
    DEFAULT_GRACE_SECONDS,
    MAX_PAGE,
    UnknownFields,
    attempts_of,
    checked_fields,
    create_endpoint,
    deliveries_page,
    delivery_as_dict,
    endpoint_as_dict,
    endpoints_of_app,
    resend,
    reveal_endpoint_secret,
    rotate_endpoint_secret,
    secret_as_dict,
    update_endpoint,
)
from saas.webhooks.models import WebhookEvent
from saas.webhooks.ping import send_ping

DEFAULT_PAGE = 20


def _checked(request, body: dict[str, Any], partial: bool) -> dict[str, Any]:
    try:
        return checked_fields(
            body, partial=partial,
            allow_private=request.registry.settings["saas.backchannel.allow_private"])
    except UnknownFields as exc:
        raise unknown_fields(exc.names) from exc
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc


def _audit(request, type_: str, context: WebhookScope, **details: Any) -> None:
    audit(request, type_, context.app, details={"webhook_id": str(context.endpoint.id),
                                                **details})


@view_config(route_name="manage.app.webhooks", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def list_webhooks(context: AppScope, request) -> dict[str, Any]:
    return {"webhooks": [endpoint_as_dict(e) for e in endpoints_of_app(request.db, context.app)]}


@view_config(route_name="manage.app.webhooks", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def create(context: AppScope, request) -> dict[str, Any]:
    fields = _checked(request, json_body(request), partial=False)
    try:
        endpoint, secret = create_endpoint(request.db, request.secret_box, context.app, fields)
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    audit(request, "webhook.created", context.app,
          details={"webhook_id": str(endpoint.id), "events": endpoint.events})
    request.response.status_int = 201
    request.response.location = request.route_url(
        "manage.app.webhook", app_id=context.app.app_id, webhook_id=str(endpoint.id))
    no_store(request)
    return {**endpoint_as_dict(endpoint), "secret": secret}


@view_config(route_name="manage.app.webhook", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: WebhookScope, request) -> dict[str, Any]:
    return endpoint_as_dict(context.endpoint)


@view_config(route_name="manage.app.webhook", request_method="PATCH", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def update(context: WebhookScope, request) -> dict[str, Any]:
    changed = update_endpoint(context.endpoint, _checked(request, json_body(request),
                                                         partial=True))
    if changed:
        _audit(request, "webhook.updated", context, fields=sorted(changed))
        request.db.flush()
        if context.endpoint.enabled:
            kick_after_commit(request)  # deliveries held while it was off resume
    return endpoint_as_dict(context.endpoint)


@view_config(route_name="manage.app.webhook", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: WebhookScope, request) -> HTTPNoContent:
    _audit(request, "webhook.deleted", context)
    request.db.delete(context.endpoint)
    return HTTPNoContent()


@view_config(route_name="manage.app.webhook.secret", request_method="GET", renderer="json",
             permission=Permission.MANAGE)
def reveal(context: WebhookScope, request) -> dict[str, Any]:
    _audit(request, "webhook.secret_revealed", context)
    no_store(request)
    return secret_as_dict(context.endpoint,
                          reveal_endpoint_secret(context.endpoint, request.secret_box))


@view_config(route_name="manage.app.webhook.secret.rotate", request_method="POST",
             renderer="json", permission=Permission.MANAGE, require_csrf=False)
def rotate(context: WebhookScope, request) -> dict[str, Any]:
    body = json_body(request, optional=True)
    unknown = sorted(set(body) - {"grace_seconds"})
    if unknown:
        raise unknown_fields(unknown)
    grace = body.get("grace_seconds", DEFAULT_GRACE_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool):
        raise invalid_value("grace_seconds must be a whole number of seconds.")
    try:
        secret = rotate_endpoint_secret(context.endpoint, request.secret_box, grace)
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    _audit(request, "webhook.secret_rotated", context, grace_seconds=grace)
    no_store(request)
    return secret_as_dict(context.endpoint, secret)


@view_config(route_name="manage.app.webhook.test", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def test_event(context: WebhookScope, request) -> dict[str, Any]:
    """Send a signed ``ping`` now; the answer says how the receiver took it."""
    outcome = send_ping(context.endpoint, context.app.app_id, request.secret_box,
                        Policy.from_settings(request.registry.settings))
    _audit(request, "webhook.tested", context, ok=outcome.result.ok,
           status_code=outcome.result.status_code)
    return outcome.as_dict()


@view_config(route_name="manage.app.webhook.deliveries", request_method="GET",
             renderer="json", permission=Permission.VIEW)
def deliveries(context: WebhookScope, request) -> dict[str, Any]:
    try:
        rows, next_cursor = deliveries_page(
            request.db, context.endpoint, cursor=cursor_param(request),
            limit=limit_param(request, default=DEFAULT_PAGE, maximum=MAX_PAGE))
    except BadCursor as exc:
        raise invalid_cursor() from exc
    held = not context.endpoint.enabled
    return {"deliveries": [delivery_as_dict(*row, held=held) for row in rows],
            "next_cursor": next_cursor}


@view_config(route_name="manage.app.webhook.delivery.resend", request_method="POST",
             renderer="json", permission=Permission.MANAGE, require_csrf=False)
def resend_delivery(context: DeliveryScope, request) -> dict[str, Any]:
    resend(request, context.delivery)
    _audit(request, "webhook.resent", context, delivery_id=str(context.delivery.id))
    request.db.flush()
    request.response.status_int = 202
    delivery = context.delivery
    event = request.db.get(WebhookEvent, delivery.event_id)
    return delivery_as_dict(delivery, event, attempts_of(request.db, [delivery.id])
                            .get(delivery.id, []), held=not context.endpoint.enabled)
