"""An app's overview: how to use it, and its logins and failures over time."""

from __future__ import annotations

import datetime as dt
import secrets

from pyramid.view import view_config

from saas.apps.models import App
from saas.audit.queries import login_stats
from saas.dashboard.charts import DEFAULT_RANGE, RANGES, login_chart, reason_bars
from saas.flows.redirect_uris import with_query
from saas.pkce import s256
from saas.security import Permission


def hosted_form_try_url(base_url: str, app: App) -> str | None:
    """The hosted sign-in form as a client opens it, for a member to try: the
    app's first web redirect URI and a PKCE challenge whose verifier is thrown
    away, so the code the form ends with can never be exchanged. None while the
    app cannot serve the form (no endpoint, back-channel off, no redirect URI)."""
    if not (app.backchannel and app.custom_auth_endpoint and app.redirect_uris):
        return None
    web = [uri for uri in app.redirect_uris if uri.startswith(("https://", "http://"))]
    return with_query(f"{base_url}/v1/apps/{app.app_id}/login", {
        "redirect_uri": (web or app.redirect_uris)[0],
        "code_challenge": s256(secrets.token_urlsafe(32)),
        "code_challenge_method": "S256",
    })


@view_config(route_name="dashboard.app", renderer="dashboard/app_overview.html",
             request_method="GET", permission=Permission.VIEW)
def app_overview(context, request) -> dict:
    period = RANGES.get(request.GET.get("range", DEFAULT_RANGE), RANGES[DEFAULT_RANGE])
    since = period.since(dt.datetime.now(dt.UTC))
    stats = login_stats(request.read_db, context.app.app_id, bucket=period.bucket, since=since)
    base_url = request.registry.settings["saas.public_base_url"]
    return {
        "app": context.app,
        "tab": "overview",
        "period": period,
        "ranges": RANGES.values(),
        "chart": login_chart(stats),
        "reason_bars": reason_bars(stats["failures_by_reason"]),
        "base_url": base_url,
        "hosted_try_url": hosted_form_try_url(base_url, context.app),
    }
