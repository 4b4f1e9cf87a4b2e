"""Management API: an app's audit log — filters, pages, CSV export, statistics."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select

from saas.audit.models import AuditEvent
from saas.audit.queries import CSV_COLUMNS
from saas.audit.types import Outcome
from tests.functional.test_manage_support import Tenant, make_tenant


@pytest.fixture
def other_tenant(db, passwords, secret_box) -> Tenant:
    return make_tenant(db, passwords, secret_box, "Globex")



@pytest.fixture
def now() -> dt.datetime:
    """Half past this hour, taken once per test (never at collection): events
    whole hours before it stay clear of the hour buckets' edges."""
    return dt.datetime.now(dt.UTC).replace(minute=30, second=0, microsecond=0)


@pytest.fixture
def hours_ago(now):
    return lambda hours: now - dt.timedelta(hours=hours)


def add_event(db, tenant, type_: str, at: dt.datetime, *, outcome=Outcome.SUCCESS,
              reason=None, user_id=None, **fields) -> AuditEvent:
    event = AuditEvent(tenant_id=tenant.tenant_id, app_id=tenant.app.app_id, type=type_,
                       outcome=outcome, reason=reason, user_id=user_id, at=at,
                       details=fields.pop("details", {}), **fields)
    db.add(event)
    return event


@pytest.fixture
def log(db, tenant, other_tenant, hours_ago):
    """Six login events of the tenant's app over five hours, one of another tenant."""
    user = tenant.user.id
    events = [
        add_event(db, tenant, "login.succeeded", hours_ago(5), user_id=user,
                  external_id="user-1"),
        add_event(db, tenant, "login.failed", hours_ago(4), outcome=Outcome.FAILURE,
                  reason="token_expired", external_id="=HYPERLINK(\"http://evil\")"),
        add_event(db, tenant, "login.succeeded", hours_ago(3), user_id=user,
                  user_agent="@SUM(1+1)", details={"flow": "redirect"}),
        add_event(db, tenant, "custom_token.failed", hours_ago(2), outcome=Outcome.FAILURE,
                  reason="token_bad_signature"),
        add_event(db, tenant, "login.failed", hours_ago(1), outcome=Outcome.FAILURE,
                  reason="token_expired", user_id=user),
        add_event(db, tenant, "custom_token.succeeded", hours_ago(1)),
        add_event(db, other_tenant, "login.succeeded", hours_ago(1)),
    ]
    db.commit()
    return events[:6]


def ids(page: dict) -> list[str]:
    return [event["id"] for event in page["events"]]


def test_events_newest_first_with_filters(api, tenant, log, hours_ago):
    path = tenant.app_path + "/audit"
    everything = api.get(path).json
    assert ids(everything) == [str(e.id) for e in sorted(
        log, key=lambda e: (e.at, e.id), reverse=True)]
    assert everything["next_cursor"] is None
    first = everything["events"][-1]
    assert first["type"] == "login.succeeded" and first["outcome"] == "success"
    assert first["user_id"] == str(tenant.user.id) and first["external_id"] == "user-1"
    assert dt.datetime.fromisoformat(first["at"]) == hours_ago(5)

    failed = api.get(path, type="login.failed").json["events"]
    assert [e["reason"] for e in failed] == ["token_expired", "token_expired"]
    assert len(api.get(path, outcome="failure").json["events"]) == 3
    assert len(api.get(path, user_id=str(tenant.user.id)).json["events"]) == 3
    window = api.get(path, since=hours_ago(4).isoformat(), until=hours_ago(2).isoformat()).json
    assert ids(window) == [str(log[2].id), str(log[1].id)]  # until is exclusive
    zulu = api.get(path, since=hours_ago(1.5).strftime("%Y-%m-%dT%H:%M:%SZ")).json
    assert len(zulu["events"]) == 2


def test_cursor_pages_cover_every_event_once(api, tenant, log):
    path = tenant.app_path + "/audit"
    seen, cursor = [], None
    while True:
        page = api.get(path, limit=2, **({"cursor": cursor} if cursor else {})).json
        assert len(page["events"]) <= 2
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids(api.get(path).json) and len(seen) == 6


@pytest.mark.parametrize(("params", "reason"), [
    ({"outcome": "maybe"}, "invalid_parameter"),
    ({"user_id": "user-1"}, "invalid_parameter"),
    ({"since": "yesterday"}, "invalid_parameter"),
    ({"until": "2025-13-01"}, "invalid_parameter"),
    ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "invalid_parameter"),
    ({"limit": "501"}, "invalid_parameter"),
    ({"type": "t" * 65}, "invalid_parameter"),
    ({"cursor": "bm9wZQ"}, "invalid_cursor"),
    ({"cursor": "WyJ4IiwgInkiXQ"}, "invalid_cursor"),  # ["x", "y"]
])
def test_bad_filters_are_400(api, tenant, params, reason):
    for path in ("/audit", "/audit.csv"):
        if path == "/audit.csv" and ("cursor" in params or "limit" in params):
            continue
        error = api.get(tenant.app_path + path, status=400, **params).json
        assert error["error"] == "invalid_request" and error["reason"] == reason


def test_csv_export_is_streamed_oldest_first_and_formula_safe(api, tenant, log, hours_ago):
    response = api.get(tenant.app_path + "/audit.csv", since=hours_ago(4.5).isoformat())
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="audit-{tenant.app.app_id}.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [r["id"] for r in records] == [str(e.id) for e in sorted(
        log[1:], key=lambda e: (e.at, e.id))]
    assert records[0]["external_id"] == "'=HYPERLINK(\"http://evil\")"
    assert records[1]["user_agent"] == "'@SUM(1+1)" and "redirect" in records[1]["details"]
    assert records[0]["reason"] == "token_expired" and records[0]["user_id"] == ""

    only_failures = api.get(tenant.app_path + "/audit.csv", outcome="failure").text
    assert len(list(csv.reader(io.StringIO(only_failures)))) == 1 + 3


def test_csv_of_an_empty_log_is_the_header(api, tenant):
    text = api.get(tenant.app_path + "/audit.csv", type="nothing.here").text
    assert list(csv.reader(io.StringIO(text))) == [list(CSV_COLUMNS)]


def test_stats_per_hour_and_per_day(api, tenant, log, hours_ago):
    path = tenant.app_path + "/stats"
    hourly = api.get(path, bucket="hour", since=hours_ago(6).isoformat()).json
    assert hourly["bucket"] == "hour"
    counts = {b["start"]: (b["logins"], b["failures"]) for b in hourly["buckets"]}
    hour = lambda h: hours_ago(h).replace(minute=0).isoformat()  # noqa: E731
    assert counts[hour(5)] == (1, 0) and counts[hour(4)] == (0, 1)
    assert counts[hour(2)] == (0, 1) and counts[hour(1)] == (1, 1)
    assert sum(logins for logins, _ in counts.values()) == 3
    assert hourly["failures_by_reason"] == {"token_expired": 2, "token_bad_signature": 1}

    daily = api.get(path, bucket="day", since=hours_ago(48).isoformat()).json
    assert sum(b["logins"] for b in daily["buckets"]) == 3
    assert sum(b["failures"] for b in daily["buckets"]) == 3
    assert all(b["start"].endswith("T00:00:00+00:00") for b in daily["buckets"])

    default = api.get(path).json
    assert default["bucket"] == "hour" and 24 <= len(default["buckets"]) <= 25


@pytest.mark.parametrize("params", [
    {"bucket": "week"},
    {"since": "soon"},
    {"since": dt.timedelta(hours=2)},  # from now: in the future
    {"bucket": "hour", "since": dt.timedelta(days=-40)},
    {"bucket": "day", "since": dt.timedelta(days=-400)},
])
def test_stats_refuse_bad_parameters(api, tenant, params, now):
    params = {name: (now + value).isoformat() if isinstance(value, dt.timedelta) else value
              for name, value in params.items()}
    error = api.get(tenant.app_path + "/stats", status=400, **params).json
    assert error["reason"] == "invalid_parameter"


def test_events_of_other_apps_never_show(api, tenant, other_tenant, log, db):
    foreign = db.scalar(select(AuditEvent.id).where(
        AuditEvent.app_id == other_tenant.app.app_id))
    listed = ids(api.get(tenant.app_path + "/audit").json)
    assert foreign is not None and str(foreign) not in listed and len(listed) == 6
