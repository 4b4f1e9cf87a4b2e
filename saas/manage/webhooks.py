"""An app's webhook endpoints: create, list, read, update, delete; the secret;
a test event; the delivery log and "resend". (No CSRF: bearer-key API, see
``saas.manage.apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.validation import InvalidSetting
from saas.manage.errors import invalid_cursor, invalid_value, unknown_fields
from saas.manage.params import cursor_param, json_body, limit_param
from saas.manage.responses import no_store
from saas.pagination import BadCursor
from saas.security import Permission
from saas.tenancy.apps import allow_private
from saas.tenancy.contexts import AppContext, DeliveryContext, WebhookContext
from saas.tenancy.webhooks import (
    create_webhook,
    delete_webhook,
    resend_delivery,
    reveal_webhook_secret,
    rotate_webhook_secret,
    send_test_event,
    update_webhook,
)
from saas.webhooks.endpoints import (
    DEFAULT_GRACE_SECONDS,
    MAX_PAGE,
    UnknownFields,
    attempts_of,
    checked_fields,
    deliveries_page,
    delivery_as_dict,
    endpoint_as_dict,
    endpoints_of_app,
    secret_as_dict,
)
from saas.webhooks.models import WebhookEvent

DEFAULT_PAGE = 20


def _checked(request, body: dict[str, Any], partial: bool) -> dict[str, Any]:
    try:
        return checked_fields(body, partial=partial, allow_private=allow_private(request))
    except UnknownFields as exc:
        raise unknown_fields(exc.names) from exc
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc


@view_config(route_name="manage.app.webhooks", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def list_webhooks(context: AppContext, request) -> dict[str, Any]:
    return {"webhooks": [endpoint_as_dict(e) for e in endpoints_of_app(request.db, context.app)]}


@view_config(route_name="manage.app.webhooks", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def create(context: AppContext, request) -> dict[str, Any]:
    fields = _checked(request, json_body(request), partial=False)
    try:
        endpoint, secret = create_webhook(request, context.app, fields)
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    request.response.status_int = 201
    request.response.location = request.route_url(
        "manage.app.webhook", app_id=context.app.app_id, webhook_id=str(endpoint.id))
    no_store(request)
    return {**endpoint_as_dict(endpoint), "secret": secret}


@view_config(route_name="manage.app.webhook", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: WebhookContext, request) -> dict[str, Any]:
    return endpoint_as_dict(context.endpoint)


@view_config(route_name="manage.app.webhook", request_method="PATCH", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def update(context: WebhookContext, request) -> dict[str, Any]:
    update_webhook(request, context.app, context.endpoint,
                   _checked(request, json_body(request), partial=True))
    return endpoint_as_dict(context.endpoint)


@view_config(route_name="manage.app.webhook", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: WebhookContext, request) -> HTTPNoContent:
    delete_webhook(request, context.app, context.endpoint)
    return HTTPNoContent()


@view_config(route_name="manage.app.webhook.secret", request_method="GET", renderer="json",
             permission=Permission.MANAGE)
def reveal(context: WebhookContext, request) -> dict[str, Any]:
    no_store(request)
    return secret_as_dict(context.endpoint,
                          reveal_webhook_secret(request, context.app, context.endpoint))


@view_config(route_name="manage.app.webhook.secret.rotate", request_method="POST",
             renderer="json", permission=Permission.MANAGE, require_csrf=False)
def rotate(context: WebhookContext, request) -> dict[str, Any]:
    body = json_body(request, optional=True)
    unknown = sorted(set(body) - {"grace_seconds"})
    if unknown:
        raise unknown_fields(unknown)
    grace = body.get("grace_seconds", DEFAULT_GRACE_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool):
        raise invalid_value("grace_seconds must be a whole number of seconds.")
    try:
        secret = rotate_webhook_secret(request, context.app, context.endpoint, grace)
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    no_store(request)
    return secret_as_dict(context.endpoint, secret)


@view_config(route_name="manage.app.webhook.test", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def test_event(context: WebhookContext, request) -> dict[str, Any]:
    """Send a signed ``ping`` now; the answer says how the receiver took it."""
    return send_test_event(request, context.app, context.endpoint).as_dict()


@view_config(route_name="manage.app.webhook.deliveries", request_method="GET",
             renderer="json", permission=Permission.VIEW)
def deliveries(context: WebhookContext, request) -> dict[str, Any]:
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
def resend(context: DeliveryContext, request) -> dict[str, Any]:
    resend_delivery(request, context.app, context.endpoint, context.delivery)
    request.response.status_int = 202
    delivery = context.delivery
    event = request.db.get(WebhookEvent, delivery.event_id)
    return delivery_as_dict(delivery, event, attempts_of(request.db, [delivery.id])
                            .get(delivery.id, []), held=not context.endpoint.enabled)
