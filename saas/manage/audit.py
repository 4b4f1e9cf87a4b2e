"""An app's audit log: filtered pages, a streamed CSV export, login statistics,
one login attempt's events (saas.diagnostics.attempts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyramid.response import Response
from pyramid.view import view_config

from saas.audit.queries import MAX_PAGE, csv_stream, event_as_dict, list_events, login_stats
from saas.audit.types import Outcome
from saas.db import read_sessionmaker
from saas.diagnostics.attempts import find_attempt
from saas.manage.errors import invalid_cursor, invalid_parameter, not_found
from saas.manage.params import (
    choice_param,
    cursor_param,
    limit_param,
    text_param,
    time_param,
    uuid_param,
)
from saas.pagination import BadCursor
from saas.security import Permission
from saas.tenancy.contexts import AppContext

DEFAULT_PAGE = 100
# How far back a chart may reach by default, per bucket.
STATS_DEFAULT_SPAN = {"hour": dt.timedelta(hours=24), "day": dt.timedelta(days=30)}
STATS_MAX_SPAN = {"hour": dt.timedelta(days=31), "day": dt.timedelta(days=366)}


def filters_of(request) -> dict[str, Any]:
    """The ``type``, ``outcome``, ``user_id``, ``since`` and ``until`` filters (400 if bad)."""
    filters = {
        "type": text_param(request, "type", max_length=64) or None,
        "outcome": choice_param(request, "outcome", tuple(o.value for o in Outcome), None),
        "user_id": uuid_param(request, "user_id"),
        "since": time_param(request, "since"),
        "until": time_param(request, "until"),
    }
    if filters["since"] and filters["until"] and filters["since"] >= filters["until"]:
        raise invalid_parameter("until", "must be later than since")
    return filters


@view_config(route_name="manage.app.audit", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def events(context: AppContext, request) -> dict[str, Any]:
    """Newest first."""
    try:
        page, next_cursor = list_events(
            request.read_db, context.app.app_id, filters_of(request),
            limit=limit_param(request, default=DEFAULT_PAGE, maximum=MAX_PAGE),
            cursor=cursor_param(request),
        )
    except BadCursor as exc:
        raise invalid_cursor() from exc
    return {"events": [event_as_dict(event) for event in page], "next_cursor": next_cursor}


@view_config(route_name="manage.app.audit_csv", request_method="GET",
             permission=Permission.VIEW)
def events_as_csv(context: AppContext, request) -> Response:
    """Oldest first, the filters of ``events``; cells that a spreadsheet would run
    as formulas are prefixed with ``'``."""
    filters = filters_of(request)
    app_id = context.app.app_id
    response = Response(
        app_iter=csv_stream(read_sessionmaker(request.registry), app_id, filters),
        content_type="text/csv", charset="utf-8",
    )
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{app_id}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@view_config(route_name="manage.app.stats", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def stats(context: AppContext, request) -> dict[str, Any]:
    """Logins and failures per hour or day since ``since``, failures by reason."""
    bucket = choice_param(request, "bucket", ("hour", "day"), "hour")
    now = dt.datetime.fromtimestamp(request.now, dt.UTC)
    since = time_param(request, "since") or now - STATS_DEFAULT_SPAN[bucket]
    if since > now or now - since > STATS_MAX_SPAN[bucket]:
        max_days = STATS_MAX_SPAN[bucket].days
        raise invalid_parameter("since", f"must be in the past, at most {max_days} days "
                                         f"ago for {bucket} buckets")
    return login_stats(request.read_db, context.app.app_id, bucket=bucket, since=since)


@view_config(route_name="manage.app.attempt", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def attempt(context: AppContext, request) -> dict[str, Any]:
    """One login's events grouped by its attempt id, with the time between steps.
    Searched in the last 24 hours, or ±30 minutes around ``around``."""
    found = find_attempt(request.db, context.app.app_id, request.matchdict["attempt_id"],
                         now=dt.datetime.fromtimestamp(request.now, dt.UTC),
                         around=time_param(request, "around"))
    if found is None:
        raise not_found("attempt")
    return found.as_dict()
