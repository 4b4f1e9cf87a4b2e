"""``/v1/manage/apps`` and ``/v1/manage/apps/{app_id}``: create, list, read, update, delete.

CSRF does not apply to any view of the management API: callers authenticate
with a bearer API key that a browser never sends on its own, and session
cookies are not accepted here (``saas.security.PathSecurityPolicy``).
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.cache import publish_app, unpublish_app
from saas.apps.services import (
    UnknownFields,
    app_as_dict,
    apps_of_tenant,
    checked_settings,
    create_app,
    update_app,
)
from saas.apps.validation import InvalidSetting
from saas.manage.changes import audit
from saas.manage.contexts import AppScope, TenantScope
from saas.manage.errors import invalid_value, unknown_fields
from saas.manage.params import json_body
from saas.manage.responses import no_store
from saas.security import Permission


def checked(request, body: dict[str, Any]) -> dict[str, Any]:
    """The body's settings, checked: 422 ``unknown_fields`` or ``invalid_value``."""
    try:
        return checked_settings(
            body, allow_private=request.registry.settings["saas.backchannel.allow_private"])
    except UnknownFields as exc:
        raise unknown_fields(exc.names) from exc
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc


@view_config(route_name="manage.apps", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def create(context: TenantScope, request) -> dict[str, Any]:
    settings = checked(request, json_body(request))
    if "name" not in settings:
        raise invalid_value("name is required.")
    try:
        app, secrets = create_app(
            request.db, request.secret_box, tenant_id=context.tenant_id,
            allow_private=request.registry.settings["saas.backchannel.allow_private"],
            **settings,
        )
    except InvalidSetting as exc:
        raise invalid_value(str(exc)) from exc
    audit(request, "app.created", app, details={"name": app.name})
    publish_app(request, app)
    request.response.status_int = 201
    request.response.location = request.route_url("manage.app", app_id=app.app_id)
    no_store(request)
    return {**app_as_dict(app), "secrets": secrets}


@view_config(route_name="manage.apps", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def list_apps(context: TenantScope, request) -> dict[str, Any]:
    return {"apps": [app_as_dict(app) for app in apps_of_tenant(request.db, context.tenant_id)]}


@view_config(route_name="manage.app", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: AppScope, request) -> dict[str, Any]:
    return app_as_dict(context.app)


@view_config(route_name="manage.app", request_method="PATCH", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def update(context: AppScope, request) -> dict[str, Any]:
    changed = update_app(context.app, checked(request, json_body(request)))
    if changed:
        # Field names only: values may be long, and the log is no settings history.
        audit(request, "app.updated", context.app, details={"fields": sorted(changed)})
        publish_app(request, context.app)
    return app_as_dict(context.app)


@view_config(route_name="manage.app", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: AppScope, request) -> HTTPNoContent:
    app = context.app
    audit(request, "app.deleted", app, details={"name": app.name})
    request.db.delete(app)
    unpublish_app(request, app.app_id)
    return HTTPNoContent()
