"""The tenant's API keys for the management API: create (shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.step_up import second_factor_fresh
from saas.apikeys.services import create_api_key, keys_of_tenant, revoke_api_key
from saas.audit.types import AuditType
from saas.dashboard.common import STEP_UP, audit, field, no_store, verified_email_required
from saas.security import Permission


def _page(context, request, **extra: Any) -> dict[str, Any]:
    page = {"keys": keys_of_tenant(request.db, context.tenant_id), "new_key": None,
            "errors": {}, "values": {}}
    page.update(extra)
    return page


@view_config(route_name="dashboard.keys", renderer="dashboard/api_keys.html",
             request_method="GET", permission=Permission.VIEW)
def keys_page(context, request) -> dict:
    return _page(context, request)


@view_config(route_name="dashboard.keys", renderer="dashboard/api_keys.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def key_create(context, request) -> dict:
    name = field(request, "name", 200).strip()
    if not name:
        request.response.status_int = 400
        return _page(context, request, errors={"name": "Name the key after what will use it."})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _page(context, request, errors={"second_factor": STEP_UP},
                     values={"name": name})
    key, plaintext = create_api_key(request.db, context.tenant_id, name)
    audit(request, context, AuditType.API_KEY_CREATED,
          details={"name": key.name, "prefix": key.prefix})
    no_store(request)
    return _page(context, request, new_key={"name": key.name, "value": plaintext})


@view_config(route_name="dashboard.key.revoke", request_method="POST",
             permission=Permission.MANAGE)
def key_revoke(context, request) -> HTTPSeeOther:
    key = context.key
    if revoke_api_key(key):
        audit(request, context, AuditType.API_KEY_REVOKED,
              details={"name": key.name, "prefix": key.prefix})
        request.session.flash(f"API key “{key.name}” ({key.prefix}…) revoked.")
    else:
        request.session.flash(f"API key “{key.name}” was revoked already.")
    return HTTPSeeOther(request.route_url("dashboard.keys"))
