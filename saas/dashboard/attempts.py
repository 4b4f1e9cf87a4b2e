"""One login attempt's page: its events in order, each step's reason and timing."""

from __future__ import annotations

import datetime as dt

from pyramid.view import view_config

from saas.diagnostics.attempts import find_attempt
from saas.security import Permission


def time_hint(raw: str | None) -> dt.datetime | None:
    """The ``at`` hint of the audit page's links (ISO 8601), or None if absent or bad."""
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw[:64])
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@view_config(route_name="dashboard.app.attempt", renderer="dashboard/app_attempt.html",
             request_method="GET", permission=Permission.VIEW)
def attempt_page(context, request) -> dict:
    attempt_id = request.matchdict["attempt_id"]
    attempt = find_attempt(request.db, context.app.app_id, attempt_id,
                           now=dt.datetime.fromtimestamp(request.now, dt.UTC),
                           around=time_hint(request.GET.get("at")))
    if attempt is None:
        request.response.status_int = 404
    return {"app": context.app, "tab": "audit", "attempt": attempt, "attempt_id": attempt_id}
