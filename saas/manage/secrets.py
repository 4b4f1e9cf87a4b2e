"""An app's secrets: reveal, rotate with a grace period, revoke the previous one.

Answers that carry secrets are ``Cache-Control: no-store``. Audit rows name
the secret's kind, never its value. (No CSRF: bearer-key API, see ``apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.apps.cache import publish_app
from saas.apps.services import (
    DEFAULT_GRACE_SECONDS,
    MAX_GRACE_SECONDS,
    reveal_secrets,
    revoke_previous_secret,
    rotate_secret,
)
from saas.clock import iso_utc
from saas.manage.changes import audit
from saas.manage.contexts import AppScope, SecretScope
from saas.manage.errors import invalid_value, unknown_fields
from saas.manage.params import json_body
from saas.manage.responses import no_store
from saas.security import Permission


@view_config(route_name="manage.app.secrets", request_method="GET", renderer="json",
             permission=Permission.MANAGE)
def reveal(context: AppScope, request) -> dict[str, Any]:
    # Revealing is as sensitive as changing: MANAGE, and audited as on the dashboard.
    audit(request, "secret.revealed", context.app)
    no_store(request)
    return reveal_secrets(context.app, request.secret_box)


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
def rotate(context: SecretScope, request) -> dict[str, Any]:
    grace = _grace_seconds(json_body(request, optional=True))
    secret = rotate_secret(context.app, context.kind, request.secret_box, grace)
    audit(request, "secret.rotated", context.app,
          details={"kind": context.kind.value, "grace_seconds": grace})
    publish_app(request, context.app)
    no_store(request)
    valid_until = context.app.secret(context.kind).previous_valid_until
    return {"current": secret, "previous_valid_until": iso_utc(valid_until)}


@view_config(route_name="manage.app.secret.revoke_previous", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def revoke_previous(context: SecretScope, request) -> HTTPNoContent:
    had_previous = revoke_previous_secret(context.app, context.kind)
    audit(request, "secret.revoked", context.app,
          details={"kind": context.kind.value, "had_previous": had_previous})
    publish_app(request, context.app)
    return HTTPNoContent()
