"""An app's audit log: filters, pages, and the same filters as a CSV download;
``view=attempts`` groups the login events by attempt (saas.diagnostics.attempts)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pyramid.response import Response
from pyramid.view import view_config

from saas.audit.queries import csv_stream, list_events
from saas.audit.types import AuditType, Outcome
from saas.db import read_sessionmaker
from saas.diagnostics.attempts import attempts_for_filters
from saas.pagination import BadCursor
from saas.security import Permission

PAGE_SIZE = 50
EVENT_TYPES = (
    AuditType.LOGIN_STARTED,
    AuditType.LOGIN_SUCCEEDED,
    AuditType.LOGIN_FAILED,
    AuditType.CUSTOM_TOKEN_SUCCEEDED,
    AuditType.CUSTOM_TOKEN_FAILED,
    AuditType.TOKEN_ISSUED,
    AuditType.TOKEN_REFRESHED,
    AuditType.TOKEN_REFRESH_REUSE_DETECTED,
    AuditType.LOGOUT,
    AuditType.USER_CREATED,
    AuditType.USER_DISABLED,
    AuditType.USER_ENABLED,
    AuditType.USER_DELETED,
    AuditType.SESSION_REVOKED,
    AuditType.APP_CREATED,
    AuditType.APP_UPDATED,
    AuditType.SECRET_REVEALED,
    AuditType.SECRET_ROTATED,
    AuditType.SECRET_REVOKED,
)
FILTERS = ("type", "outcome", "user_id", "since", "until")


def parse_filters(params) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The raw filter values (for the form and links), the query's filters, errors."""
    raw = {name: params.get(name, "")[:64].strip() for name in FILTERS}
    filters: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if raw["type"]:
        filters["type"] = raw["type"]
    if raw["outcome"]:
        if raw["outcome"] in {o.value for o in Outcome}:
            filters["outcome"] = raw["outcome"]
        else:
            errors["outcome"] = "Choose success or failure."
    if raw["user_id"]:
        try:
            filters["user_id"] = uuid.UUID(raw["user_id"])
        except ValueError:
            errors["user_id"] = "A user id looks like 0b6f…-…; copy it from the user's page."
    for name, shift in (("since", 0), ("until", 1)):  # until: the whole day included
        if raw[name]:
            try:
                day = dt.date.fromisoformat(raw[name])
            except ValueError:
                errors[name] = "Enter a date as YYYY-MM-DD."
                continue
            filters[name] = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(shift)
    if "since" in filters and "until" in filters and filters["since"] >= filters["until"]:
        errors["until"] = "The end date must not be before the start date."
    return raw, filters, errors


def _details(details: dict[str, Any] | None) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False) if details else ""


@view_config(route_name="dashboard.app.audit", renderer="dashboard/app_audit.html",
             request_method="GET", permission=Permission.VIEW)
def audit_log(context, request) -> dict:
    raw, filters, errors = parse_filters(request.GET)
    cursor = request.GET.get("cursor", "")[:512] or None
    events, next_cursor, attempts = [], None, None
    view = "attempts" if request.GET.get("view") == "attempts" else "events"
    if not errors and view == "attempts":  # a login's events grouped (saas.diagnostics)
        attempts = attempts_for_filters(request.db, context.app.app_id, filters,
                                        dt.datetime.fromtimestamp(request.now, dt.UTC))
    elif not errors:
        try:
            events, next_cursor = list_events(request.read_db, context.app.app_id, filters,
                                              limit=PAGE_SIZE, cursor=cursor)
        except BadCursor:
            errors["cursor"] = "That page link is not valid any more; start from the first page."
    if errors:
        request.response.status_int = 400
    types = EVENT_TYPES if not raw["type"] or raw["type"] in EVENT_TYPES \
        else (*EVENT_TYPES, raw["type"])
    active = {name: value for name, value in raw.items() if value}
    app_id = context.app.app_id
    return {
        "app": context.app, "tab": "audit", "filters": raw, "errors": errors,
        "view": view, "attempts": attempts,
        "attempt_url": lambda event: request.route_url(
            "dashboard.app.attempt", app_id=app_id, attempt_id=event.details["attempt_id"],
            _query={"at": event.at.isoformat()}),
        "events": events, "cursor": cursor, "types": types, "details": _details,
        "first_url": request.route_url("dashboard.app.audit", app_id=app_id, _query=active),
        "next_url": request.route_url("dashboard.app.audit", app_id=app_id,
                                      _query={**active, "cursor": next_cursor})
        if next_cursor else None,
        "csv_url": request.route_url("dashboard.app.audit_csv", app_id=app_id, _query=active),
    }


@view_config(route_name="dashboard.app.audit_csv", request_method="GET",
             permission=Permission.VIEW)
def audit_csv(context, request) -> Response:
    _raw, filters, errors = parse_filters(request.GET)
    if errors:
        return Response("\n".join(errors.values()) + "\n", status=400,
                        content_type="text/plain", charset="utf-8")
    # Streamed in chunks through its own session, as the management API does: the
    # whole log (up to 100,000 rows) is never held in memory.
    response = Response(
        app_iter=csv_stream(read_sessionmaker(request.registry), context.app.app_id, filters),
        content_type="text/csv", charset="utf-8",
    )
    response.content_disposition = f'attachment; filename="audit-{context.app.app_id}.csv"'
    response.cache_control = "no-store"
    return response
