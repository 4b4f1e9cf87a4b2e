"""An app's overview: how to use it, and its logins and failures over time."""

from __future__ import annotations

import datetime as dt

from pyramid.view import view_config

from saas.audit.queries import login_stats
from saas.dashboard.charts import DEFAULT_RANGE, RANGES, login_chart, reason_bars
from saas.security import Permission


@view_config(route_name="dashboard.app", renderer="dashboard/app_overview.html",
             request_method="GET", permission=Permission.VIEW)
def app_overview(context, request) -> dict:
    period = RANGES.get(request.GET.get("range", DEFAULT_RANGE), RANGES[DEFAULT_RANGE])
    since = period.since(dt.datetime.now(dt.UTC))
    stats = login_stats(request.db, context.app.app_id, bucket=period.bucket, since=since)
    return {
        "app": context.app,
        "tab": "overview",
        "period": period,
        "ranges": RANGES.values(),
        "chart": login_chart(stats),
        "reason_bars": reason_bars(stats["failures_by_reason"]),
        "base_url": request.registry.settings["saas.public_base_url"],
    }
