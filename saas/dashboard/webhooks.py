"""An app's webhook endpoints: add, edit, enable/disable, delete, reveal/rotate the
secret, send a test event, and the delivery log with its attempts and a "resend"
button."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.step_up import second_factor_fresh
from saas.apps.validation import InvalidSetting
from saas.dashboard.common import (
    STEP_UP,
    WRONG_PASSWORD,
    checked,
    field,
    no_store,
    verified_email_required,
)
from saas.dashboard.common import password_confirmed as confirmed
from saas.pagination import BadCursor
from saas.security import Permission
from saas.tenancy.apps import allow_private
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
    checked_events,
    checked_url,
    deliveries_page,
    endpoints_of_app,
    overdue,
    previous_valid_until,
)
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.models import EventType

PAGE_SIZE = 20
EVENT_HINTS = {
    EventType.USER_CREATED: "A user logged in for the first time.",
    EventType.USER_UPDATED: "A login changed a user's custom or profile data.",
    EventType.LOGIN_SUCCEEDED: "A login was accepted.",
    EventType.LOGIN_FAILED: "A login was refused, with its reason.",
    EventType.USER_DISABLED: "A user was disabled here or through the API.",
    EventType.USER_DELETED: "A user was deleted here or through the API.",
    EventType.SESSION_REVOKED: "A session ended: logout, token reuse, or revoked by you.",
}


def _form(request) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """The posted URL and events: (checked fields, errors, values to show again)."""
    values = {"url": field(request, "url", 2100).strip(),
              "events": [e for e in request.POST.getall("events") if e in EVENT_TYPES]}
    fields, errors = {}, {}
    try:
        fields["url"] = checked_url(values["url"], allow_private=allow_private(request))
    except InvalidSetting as exc:
        errors["url"] = str(exc)
    try:
        fields["events"] = checked_events(request.POST.getall("events"))
    except InvalidSetting:
        errors["events"] = "Choose at least one event."
    return fields, errors, values


def _list_page(context, request, **extra: Any) -> dict[str, Any]:
    page = {"app": context.app, "tab": "webhooks", "event_types": EVENT_TYPES,
            "hints": EVENT_HINTS, "endpoints": endpoints_of_app(request.db, context.app),
            "errors": {}, "values": {"url": "", "events": list(EVENT_TYPES)}}
    page.update(extra)
    return page


@view_config(route_name="dashboard.app.webhooks", renderer="dashboard/webhooks.html",
             request_method="GET", permission=Permission.VIEW)
def webhooks_page(context, request) -> dict:
    return _list_page(context, request)


@view_config(route_name="dashboard.app.webhooks", renderer="dashboard/webhooks.html",
             request_method="POST", permission=Permission.MANAGE)
def webhook_create(context, request) -> dict:
    fields, errors, values = _form(request)
    if not errors:
        try:
            endpoint, secret = create_webhook(request, context.app, fields)
        except InvalidSetting as exc:
            errors["url"] = str(exc)
    if errors:
        request.response.status_int = 400
        return _list_page(context, request, errors=errors, values=values)
    no_store(request)
    return _list_page(context, request, new_secret={"endpoint": endpoint, "value": secret})


def _detail_page(context, request, **extra: Any) -> dict[str, Any]:
    endpoint = context.endpoint
    cursor = request.GET.get("cursor", "")[:512] or None
    page = {"app": context.app, "tab": "webhooks", "endpoint": endpoint,
            "event_types": EVENT_TYPES, "hints": EVENT_HINTS, "errors": {},
            "values": {"url": endpoint.url, "events": list(endpoint.events)},
            "revealed": None, "new_secret": None, "deliveries": [], "next_url": None,
            "cursor": cursor, "log_error": None,
            "previous_valid_until": previous_valid_until(endpoint)}
    try:
        page["deliveries"], next_cursor = deliveries_page(request.db, endpoint,
                                                          limit=PAGE_SIZE, cursor=cursor)
    except BadCursor:
        request.response.status_int = 400
        page["log_error"] = "That page link is not valid any more; start from the first page."
        next_cursor = None
    if next_cursor:
        page["next_url"] = _url(request, context, _query={"cursor": next_cursor})
    page["overdue"] = overdue(endpoint, page["deliveries"])
    page.update(extra)
    return page


def _url(request, context, route: str = "dashboard.app.webhook", **kw: Any) -> str:
    return request.route_url(route, app_id=context.app.app_id,
                             webhook_id=str(context.endpoint.id), **kw)


def _back(request, context, message: str) -> HTTPSeeOther:
    request.session.flash(message)
    return HTTPSeeOther(_url(request, context))


@view_config(route_name="dashboard.app.webhook", renderer="dashboard/webhook.html",
             request_method="GET", permission=Permission.VIEW)
def webhook_detail(context, request) -> dict:
    return _detail_page(context, request)


@view_config(route_name="dashboard.app.webhook", renderer="dashboard/webhook.html",
             request_method="POST", permission=Permission.MANAGE)
def webhook_update(context, request) -> dict | HTTPSeeOther:
    fields, errors, values = _form(request)
    if errors:
        request.response.status_int = 400
        return _detail_page(context, request, errors=errors, values=values)
    changed = update_webhook(request, context.app, context.endpoint, fields)
    return _back(request, context, "Webhook saved." if changed else "Nothing changed.")


def _set_enabled(context, request, enabled: bool) -> HTTPSeeOther:
    if not update_webhook(request, context.app, context.endpoint, {"enabled": enabled}):
        return _back(request, context, f"The webhook is {'enabled' if enabled else 'disabled'}"
                                       " already.")
    if enabled:
        return _back(request, context, "Webhook enabled; held deliveries resume.")
    return _back(request, context, "Webhook disabled; new events wait until you enable it.")


@view_config(route_name="dashboard.app.webhook.enable", request_method="POST",
             permission=Permission.MANAGE)
def webhook_enable(context, request) -> HTTPSeeOther:
    return _set_enabled(context, request, True)


@view_config(route_name="dashboard.app.webhook.disable", request_method="POST",
             permission=Permission.MANAGE)
def webhook_disable(context, request) -> HTTPSeeOther:
    return _set_enabled(context, request, False)


@view_config(route_name="dashboard.app.webhook.delete", renderer="dashboard/webhook.html",
             request_method="POST", permission=Permission.MANAGE)
def webhook_delete(context, request) -> dict | HTTPSeeOther:
    if not checked(request, "confirm"):
        request.response.status_int = 400
        return _detail_page(context, request,
                            errors={"delete": "Tick the box to confirm the deletion."})
    delete_webhook(request, context.app, context.endpoint)
    request.session.flash("Webhook deleted, with its delivery log.")
    return HTTPSeeOther(request.route_url("dashboard.app.webhooks", app_id=context.app.app_id))


@view_config(route_name="dashboard.app.webhook.reveal", renderer="dashboard/webhook.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def webhook_reveal(context, request) -> dict:
    if not confirmed(request):
        request.response.status_int = 401
        return _detail_page(context, request, errors={"secret": WRONG_PASSWORD})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _detail_page(context, request, errors={"secret": STEP_UP})
    no_store(request)
    return _detail_page(context, request,
                        revealed=reveal_webhook_secret(request, context.app, context.endpoint))


@view_config(route_name="dashboard.app.webhook.rotate", renderer="dashboard/webhook.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def webhook_rotate(context, request) -> dict:
    if not confirmed(request):
        request.response.status_int = 401
        return _detail_page(context, request, errors={"secret": WRONG_PASSWORD})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _detail_page(context, request, errors={"secret": STEP_UP})
    secret = rotate_webhook_secret(request, context.app, context.endpoint)
    no_store(request)
    return _detail_page(context, request, new_secret=secret)


@view_config(route_name="dashboard.app.webhook.test", request_method="POST",
             permission=Permission.MANAGE)
def webhook_test(context, request) -> HTTPSeeOther:
    """Post a signed ``ping`` now and say how the receiver took it."""
    outcome = send_test_event(request, context.app, context.endpoint)
    return _back(request, context, outcome.sentence())


@view_config(route_name="dashboard.app.webhook.resend", request_method="POST",
             permission=Permission.MANAGE)
def webhook_resend(context, request) -> HTTPSeeOther:
    resend_delivery(request, context.app, context.endpoint, context.delivery)
    note = "" if context.endpoint.enabled else " It goes out once the webhook is enabled."
    return _back(request, context, f"Delivery queued again with the same event id.{note}")
