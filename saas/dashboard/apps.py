"""The tenant's apps: list and create."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.apps.services import apps_of_tenant
from saas.apps.validation import InvalidSetting
from saas.dashboard.app_form import base_candidates, check_each, summary
from saas.dashboard.common import field
from saas.security import Permission
from saas.tenancy.apps import allow_private, create_app


@view_config(route_name="dashboard.apps", renderer="dashboard/apps.html",
             request_method="GET", permission=Permission.VIEW)
def apps_list(context, request) -> dict:
    return {"apps": apps_of_tenant(request.db, context.tenant_id)}


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="GET", permission=Permission.VIEW)
def app_new_form(request) -> dict:
    return {"errors": {}, "values": {}, "summary": []}


def validate_new_app(values: dict[str, str], *, allow_private: bool
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked settings of a new app and every field's errors at once."""
    errors: dict[str, Any] = {}
    candidates = base_candidates(values, errors)
    return check_each(candidates, errors, allow_private=allow_private), errors


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="POST", permission=Permission.MANAGE)
def app_create(context, request) -> dict | HTTPSeeOther:
    values = {
        "name": field(request, "name", 200),
        "custom_auth_endpoint": field(request, "custom_auth_endpoint", 2048).strip(),
        "redirect_uris": field(request, "redirect_uris", 100_000),
        "restart_url": field(request, "restart_url", 2048).strip(),
    }
    settings, errors = validate_new_app(values, allow_private=allow_private(request))
    if errors:
        request.response.status_int = 400
        return {"errors": errors, "values": values, "summary": summary(errors)}
    try:
        app, _secrets = create_app(request, context.tenant_id, settings)
    except InvalidSetting as exc:  # the endpoint's name stopped resolving meanwhile, say
        request.response.status_int = 400
        return {"errors": {"form": str(exc)}, "values": values, "summary": []}
    request.session.flash(f"App “{app.name}” created. Reveal its secrets below when you need them.")
    return HTTPSeeOther(request.route_url("dashboard.app.secrets", app_id=app.app_id))
