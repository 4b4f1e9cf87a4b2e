"""An app's secrets: reveal, rotate with a grace period, revoke the previous one.

The client secret of a confidential client (kind ``client_secret``) is kept
as a hash only: it is listed without its value, and rotating it is the only
way to see a new one.

Answers that carry secrets are ``Cache-Control: no-store``. Audit rows name
the secret's kind, never its value. (No CSRF: bearer-key API, see ``apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.services import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, previous_valid_until
from saas.clock import iso_utc
from saas.manage.errors import invalid_value, unknown_fields
from saas.manage.params import json_body
from saas.manage.responses import no_store
from saas.security import Permission
from saas.tenancy.apps import reveal_secrets, revoke_previous_secret, rotate_secret
from saas.tenancy.contexts import AppContext, SecretContext


@view_config(route_name="manage.app.secrets", request_method="GET", renderer="json",
             permission=Permission.MANAGE)
def reveal(context: AppContext, request) -> dict[str, Any]:
    # Revealing is as sensitive as changing: MANAGE, and audited as on the dashboard.
    no_store(request)
    return reveal_secrets(request, context.app)


def _grace_seconds(body: dict[str, Any]) -> int:
    extra = sorted(set(body) - {"grace_seconds"})
    if extra:
        raise unknown_fields(extra)
    grace = body.get("grace_seconds", DEFAULT_GRACE_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool) \
            or not 0 <= grace <= MAX_GRACE_SECONDS:
        raise invalid_value(f"grace_seconds must be a whole number from 0 to {MAX_GRACE_SECONDS}.")
    return grace


@view_config(route_name="manage.app.secret.rotate", request_method="POST", renderer="json",
             permission=Permission.MANAGE, require_csrf=False)
def rotate(context: SecretContext, request) -> dict[str, Any]:
    grace = _grace_seconds(json_body(request, optional=True))
    secret = rotate_secret(request, context.app, context.kind, grace)
    no_store(request)
    valid_until = previous_valid_until(context.app, context.kind)
    return {"current": secret, "previous_valid_until": iso_utc(valid_until)}


@view_config(route_name="manage.app.secret.revoke_previous", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def revoke_previous(context: SecretContext, request) -> HTTPNoContent:
    revoke_previous_secret(request, context.app, context.kind)
    return HTTPNoContent()
