"""Refusals of the management API: 401 without a live key, never a sign-in page;
its own 404 for ids the key's tenant does not have.

Pyramid raises ``HTTPForbidden`` when a context's ACL refuses the caller; under
``/v1/manage`` that becomes the JSON 401 of RFC 6750 (no or a bad key) — the
dashboard's forbidden view, which redirects to its sign-in page, never sees it.
The shared route contexts raise ``TenantNotFound``; here it is the JSON
``not_found`` naming what was not found, on the dashboard its 404 page.
"""

from __future__ import annotations

from pyramid.view import exception_view_config, forbidden_view_config

from saas.errors import ApiError, ManageReason, render_error
from saas.manage.errors import not_found, unauthorized
from saas.security import bearer_value
from saas.tenancy.contexts import TenantNotFound

MANAGE_PATHS = r"^/v1/manage(/|$)"


@forbidden_view_config(path_info=MANAGE_PATHS)
def manage_forbidden(request):
    if request.api_key is None:
        return render_error(request, unauthorized(bearer_value(request) is not None))
    return render_error(request, ApiError(403, "access_denied", ManageReason.FORBIDDEN,
                                          "this API key may not do this"))


@exception_view_config(TenantNotFound, path_info=MANAGE_PATHS)
def manage_not_found(exc: TenantNotFound, request):
    return render_error(request, not_found(exc.what))
