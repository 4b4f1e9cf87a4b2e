"""An app's secrets: reveal, rotate with a grace period, revoke the previous.

The two shared secrets are encrypted and can be revealed; a confidential
client's client secret is kept as a hash only, so it is shown once when it is
created or rotated and never revealed.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.step_up import second_factor_fresh
from saas.apps.models import CLIENT_SECRET_KIND, App, SecretKind
from saas.apps.services import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, confidential_secret
from saas.dashboard.common import (
    STEP_UP,
    WRONG_PASSWORD,
    field,
    no_store,
    verified_email_required,
)
from saas.dashboard.common import password_confirmed as confirmed
from saas.db import utcnow
from saas.security import Permission
from saas.tenancy.apps import reveal_secrets, revoke_previous_secret, rotate_secret

LABELS = {SecretKind.CUSTOM_AUTH: "Custom-auth secret",
          SecretKind.CUSTOM_TOKEN: "Custom-token secret",
          CLIENT_SECRET_KIND: "Client secret"}
USES = {SecretKind.CUSTOM_AUTH: "Signs the tokens your login endpoint returns.",
        SecretKind.CUSTOM_TOKEN: "Signs the custom tokens your servers mint for logins.",
        CLIENT_SECRET_KIND: "Authenticates your server at the token, revocation and "
                            "introspection endpoints (OpenID Connect confidential client)."}
DEFAULT_GRACE_HOURS = DEFAULT_GRACE_SECONDS // 3600
MAX_GRACE_HOURS = MAX_GRACE_SECONDS // 3600


def secret_rows(app: App) -> list[dict[str, Any]]:
    """What the page says about each secret, never its value."""
    now = utcnow()
    rows = []
    for kind in SecretKind:
        secret = app.secret(kind)
        valid_until = secret.previous_valid_until
        live = bool(secret.previous_ciphertext) and valid_until is not None and valid_until > now
        rows.append({"kind": kind.value, "label": LABELS[kind], "use": USES[kind],
                     "rotated_at": secret.rotated_at, "hashed": False,
                     "previous_valid_until": valid_until if live else None})
    client_secret = confidential_secret(app)
    if client_secret is not None:
        valid_until = client_secret.previous_valid_until
        live = bool(client_secret.previous_hash) and valid_until is not None \
            and valid_until > now
        rows.append({"kind": CLIENT_SECRET_KIND, "label": LABELS[CLIENT_SECRET_KIND],
                     "use": USES[CLIENT_SECRET_KIND], "rotated_at": client_secret.rotated_at,
                     "hashed": True, "previous_valid_until": valid_until if live else None})
    return rows


def _page(context, **extra: Any) -> dict[str, Any]:
    page = {"app": context.app, "tab": "secrets", "rows": secret_rows(context.app),
            "revealed": None, "new_secret": None, "errors": {},
            "grace_hours": DEFAULT_GRACE_HOURS, "max_grace_hours": MAX_GRACE_HOURS}
    page.update(extra)
    return page


@view_config(route_name="dashboard.app.secrets", renderer="dashboard/app_secrets.html",
             request_method="GET", permission=Permission.VIEW)
def secrets_page(context, request) -> dict:
    return _page(context)


@view_config(route_name="dashboard.app.reveal", renderer="dashboard/app_secrets.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def reveal(context, request) -> dict:
    if not confirmed(request):
        request.response.status_int = 401
        return _page(context, errors={"reveal": WRONG_PASSWORD})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _page(context, errors={"reveal": STEP_UP})
    no_store(request)
    return _page(context, revealed=reveal_secrets(request, context.app))


@view_config(route_name="dashboard.app.secret.rotate", renderer="dashboard/app_secrets.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def rotate(context, request) -> dict:
    kind = context.kind
    raw_hours = field(request, "grace_hours", 10).strip() or str(DEFAULT_GRACE_HOURS)
    if not raw_hours.isdigit() or int(raw_hours) > MAX_GRACE_HOURS:
        request.response.status_int = 400
        return _page(context, errors={str(kind): f"Enter a whole number of hours from 0 to "
                                                 f"{MAX_GRACE_HOURS}."})
    if not confirmed(request):
        request.response.status_int = 401
        return _page(context, errors={str(kind): WRONG_PASSWORD})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _page(context, errors={str(kind): STEP_UP})
    grace_seconds = int(raw_hours) * 3600
    plaintext = rotate_secret(request, context.app, kind, grace_seconds)
    no_store(request)
    return _page(context, new_secret={"kind": str(kind), "label": LABELS[kind],
                                      "value": plaintext,
                                      "hashed": kind == CLIENT_SECRET_KIND})


@view_config(route_name="dashboard.app.secret.revoke", request_method="POST",
             permission=Permission.MANAGE)
def revoke_previous(context, request) -> HTTPSeeOther:
    kind = context.kind
    if revoke_previous_secret(request, context.app, kind):
        request.session.flash(f"The previous {LABELS[kind].lower()} no longer verifies.")
    else:
        request.session.flash(f"There was no previous {LABELS[kind].lower()} to revoke.")
    return HTTPSeeOther(request.route_url("dashboard.app.secrets", app_id=context.app.app_id))
