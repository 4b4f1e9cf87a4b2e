"""``/v1/manage/apps`` and ``/v1/manage/apps/{app_id}``: create, list, read, update, delete.

CSRF does not apply to any view of the management API: callers authenticate
with a bearer API key that a browser never sends on its own, and session
cookies are not accepted here (``saas.security.PathSecurityPolicy``).
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.services import UnknownFields, app_as_dict, apps_of_tenant, checked_settings
from saas.apps.validation import InvalidSetting
from saas.manage.errors import invalid_value, unknown_fields
from saas.manage.params import json_body
from saas.manage.responses import no_store
from saas.security import Permission
from saas.tenancy.apps import allow_private, create_app, delete_app, update_app
from saas.tenancy.contexts import AppContext, TenantContext


def checked(request, body: dict[str, Any]) -> dict[str, Any]:
    """The body's settings, checked: 422 ``unknown_fields`` or ``invalid_value``."""
    try:
        return checked_settings(body, allow_private=allow_private(request))
    except UnknownFields as exc:
        raise unknown_fields(exc.names) from exc
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc


@view_config(route_name="manage.apps", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def create(context: TenantContext, request) -> dict[str, Any]:
    settings = checked(request, json_body(request))
    if "name" not in settings:
        raise invalid_value("name is required.")
    try:
        app, secrets = create_app(request, context.tenant_id, settings)
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    request.response.status_int = 201
    request.response.location = request.route_url("manage.app", app_id=app.app_id)
    no_store(request)
    return {**app_as_dict(app), "secrets": secrets}


@view_config(route_name="manage.apps", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def list_apps(context: TenantContext, request) -> dict[str, Any]:
    return {"apps": [app_as_dict(app) for app in apps_of_tenant(request.db, context.tenant_id)]}


@view_config(route_name="manage.app", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: AppContext, request) -> dict[str, Any]:
    return app_as_dict(context.app)


@view_config(route_name="manage.app", request_method="PATCH", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def update(context: AppContext, request) -> dict[str, Any]:
    update = update_app(request, context.app, checked(request, json_body(request)))
    if update.secrets:
        # The app just became a confidential client: its secret, shown this once.
        no_store(request)
        return {**app_as_dict(context.app), "secrets": update.secrets}
    return app_as_dict(context.app)


@view_config(route_name="manage.app", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: AppContext, request) -> HTTPNoContent:
    delete_app(request, context.app)
    return HTTPNoContent()
