"""An app's settings form, and deleting the app."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.apps.models import CLIENT_SECRET_KIND, App, ClientType
from saas.dashboard.app_form import base_candidates, check_each, summary, uri_errors, uri_lines
from saas.dashboard.common import checked, field, no_store
from saas.flows.redirect_uris import restart_link
from saas.security import Permission
from saas.tenancy.apps import allow_private, delete_app, update_app

FORM_ROWS = 5
MAX_FORM_ROWS = 10
FIELD_TYPES = ("text", "password", "email", "tel", "number")
TOGGLES = ("backchannel", "custom_token_enabled", "require_bound_tokens", "pkce_required",
           "oidc_custom_claim")
CLIENT_TYPES = (
    (ClientType.PUBLIC.value, "Public",
     "An app that cannot keep a secret: a mobile, desktop or single-page app. PKCE is "
     "always required."),
    (ClientType.CONFIDENTIAL.value, "Confidential",
     "A server-side app that authenticates at the token endpoint with a client secret "
     "(created when you save, shown once)."),
)


def values_of(app: App) -> dict[str, Any]:
    """The form's values for the app as it is stored."""
    form = app.hosted_form or {}
    return {
        "name": app.name,
        "custom_auth_endpoint": app.custom_auth_endpoint or "",
        "redirect_uris": "\n".join(app.redirect_uris or []),
        "access_token_ttl": str(app.access_token_ttl),
        "refresh_token_ttl": str(app.refresh_token_ttl),
        **{name: getattr(app, name) for name in TOGGLES},
        "hosted_title": form.get("title") or "",
        "hosted_fields": list(form.get("fields") or []),
        "restart_url": app.restart_url or "",
        "client_type": app.client_type,
        "post_logout_redirect_uris": "\n".join(app.post_logout_redirect_uris or []),
    }


def _posted_values(request) -> dict[str, Any]:
    rows = []
    for index in range(MAX_FORM_ROWS):
        row = {key: field(request, f"field_{key}_{index}", 100).strip()
               for key in ("name", "label", "type")}
        if row["name"] or row["label"]:
            rows.append(row)
    return {
        "name": field(request, "name", 200),
        "custom_auth_endpoint": field(request, "custom_auth_endpoint", 2048).strip(),
        "redirect_uris": field(request, "redirect_uris", 120_000),
        "access_token_ttl": field(request, "access_token_ttl", 20).strip(),
        "refresh_token_ttl": field(request, "refresh_token_ttl", 20).strip(),
        **{name: checked(request, name) for name in TOGGLES},
        "hosted_title": field(request, "hosted_title", 200).strip(),
        "hosted_fields": rows,
        "restart_url": field(request, "restart_url", 2048).strip(),
        "client_type": field(request, "client_type", 20).strip(),
        "post_logout_redirect_uris": field(request, "post_logout_redirect_uris", 120_000),
    }


def _candidates(values: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """The posted values in the shapes ``checked_settings`` takes."""
    changes = {**base_candidates(values, errors), **{name: values[name] for name in TOGGLES}}
    if values["client_type"]:  # no radio button chosen: unchanged
        changes["client_type"] = values["client_type"]
    bad_uris = uri_errors(values["post_logout_redirect_uris"], "post-logout redirect URI")
    if bad_uris:
        errors["post_logout_redirect_uris"] = bad_uris
    else:
        changes["post_logout_redirect_uris"] = uri_lines(values["post_logout_redirect_uris"])
    for name in ("access_token_ttl", "refresh_token_ttl"):
        try:
            changes[name] = int(values[name])
        except ValueError:
            errors[name] = "Enter a whole number of seconds."
    fields = values["hosted_fields"]
    if values["hosted_title"] or fields:
        changes["hosted_form"] = {"title": values["hosted_title"] or None,
                                  "fields": [dict(row, type=row["type"] or "text")
                                             for row in fields]}
    else:
        changes["hosted_form"] = None
    return changes


def validate_form(app: App, values: dict[str, Any], *, allow_private: bool
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked settings and errors per field (a list of messages for redirect URIs).

    Settings posted unchanged are not checked again: saving a title must not
    depend on the endpoint's name resolving at that moment.
    """
    errors: dict[str, Any] = {}
    changed = {name: value for name, value in _candidates(values, errors).items()
               if value != _stored(app, name)}
    return check_each(changed, errors, allow_private=allow_private), errors


def _stored(app: App, name: str) -> Any:
    if name in ("redirect_uris", "post_logout_redirect_uris"):
        return list(getattr(app, name) or [])
    return getattr(app, name)


def _page(context, values: dict[str, Any], errors: dict[str, Any],
          new_client_secret: str | None = None) -> dict[str, Any]:
    rows = min(MAX_FORM_ROWS, max(FORM_ROWS, len(values["hosted_fields"]) + 1))
    return {"app": context.app, "tab": "settings", "values": values, "errors": errors,
            "summary": summary(errors), "rows": rows, "field_types": FIELD_TYPES,
            "client_types": CLIENT_TYPES, "new_client_secret": new_client_secret,
            # Where the state-failure page links while no restart URL is set.
            "default_restart": restart_link(None, context.app.redirect_uris or [])}


@view_config(route_name="dashboard.app.settings", renderer="dashboard/app_settings.html",
             request_method="GET", permission=Permission.VIEW)
def settings_form(context, request) -> dict:
    return _page(context, values_of(context.app), {})


@view_config(route_name="dashboard.app.settings", renderer="dashboard/app_settings.html",
             request_method="POST", permission=Permission.MANAGE)
def settings_save(context, request) -> dict | HTTPSeeOther:
    values = _posted_values(request)
    settings, errors = validate_form(context.app, values,
                                     allow_private=allow_private(request))
    if errors:
        request.response.status_int = 400
        return _page(context, values, errors)
    update = update_app(request, context.app, settings)
    if update.secrets:
        # The app just became a confidential client: its secret is shown on
        # this answer only (no redirect, no cache), as a rotation's is.
        request.session.flash("Settings saved.")
        no_store(request)
        return _page(context, values_of(context.app), {},
                     new_client_secret=update.secrets[CLIENT_SECRET_KIND])
    if update:
        request.session.flash("Settings saved.")
    else:
        request.session.flash("Nothing to save: the settings are unchanged.")
    return HTTPSeeOther(request.route_url("dashboard.app.settings", app_id=context.app.app_id))


@view_config(route_name="dashboard.app.delete", renderer="dashboard/app_settings.html",
             request_method="POST", permission=Permission.MANAGE)
def app_delete(context, request) -> dict | HTTPSeeOther:
    app = context.app
    if field(request, "confirm_app_id", 20).strip() != app.app_id:
        request.response.status_int = 400
        return _page(context, values_of(app),
                     {"delete": "Type the app id exactly to confirm the deletion."})
    delete_app(request, app)
    request.session.flash(f"App “{app.name}” ({app.app_id}) deleted.")
    return HTTPSeeOther(request.route_url("dashboard.apps"))

