"""The tenant's apps: list and create."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.apps.cache import publish_app
from saas.apps.services import apps_of_tenant, checked_settings, create_app
from saas.apps.validation import InvalidSetting
from saas.dashboard.common import audit, field
from saas.security import Permission


@view_config(route_name="dashboard.apps", renderer="dashboard/apps.html",
             request_method="GET", permission=Permission.VIEW)
def apps_list(context, request) -> dict:
    return {"apps": apps_of_tenant(request.db, context.tenant_id)}


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="GET", permission=Permission.VIEW)
def app_new_form(request) -> dict:
    return {"errors": {}, "values": {}}


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="POST", permission=Permission.MANAGE)
def app_create(context, request) -> dict | HTTPSeeOther:
    values = {
        "name": field(request, "name", 200),
        "custom_auth_endpoint": field(request, "custom_auth_endpoint", 2048),
        "redirect_uris": field(request, "redirect_uris", 100_000),
        "restart_url": field(request, "restart_url", 2048).strip(),
    }
    allow_private = request.registry.settings["saas.backchannel.allow_private"]
    try:
        restart = checked_settings({"restart_url": values["restart_url"] or None},
                                   allow_private=allow_private)
        app, _secrets = create_app(
            request.db,
            request.secret_box,
            tenant_id=context.tenant_id,
            name=values["name"],
            custom_auth_endpoint=values["custom_auth_endpoint"].strip() or None,
            redirect_uris=values["redirect_uris"].splitlines(),
            allow_private=allow_private,
            **restart,
        )
    except InvalidSetting as exc:
        request.response.status_int = 400
        return {"errors": {"form": str(exc)}, "values": values}
    audit(request, context, "app.created", app=app, details={"name": app.name})
    publish_app(request, app)
    request.session.flash(f"App “{app.name}” created. Reveal its secrets below when you need them.")
    return HTTPSeeOther(request.route_url("dashboard.app.secrets", app_id=app.app_id))
