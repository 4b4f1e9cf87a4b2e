"""The audit log page: filters, pages, and the CSV download with the same filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from saas.audit.types import Outcome
from tests.functional.dashboard_helpers import build_world, make_event, sign_in

DAY = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    app, user = world.app, world.user
    make_event(db, app, "login.succeeded", at=DAY - dt.timedelta(days=2), user_id=user.id,
               external_id="alice")
    make_event(db, app, "login.failed", at=DAY - dt.timedelta(days=1),
               outcome=Outcome.FAILURE, reason="tenant_denied", external_id="mallory",
               details={"attempt": 3})
    make_event(db, app, "login.succeeded", at=DAY, user_id=user.id, external_id="alice")
    make_event(db, app, "user.disabled", at=DAY + dt.timedelta(days=1), user_id=user.id,
               external_id="=cmd|' /C calc'!A0")
    db.commit()
    sign_in(webapp, world.owner.email)
    return world


def _path(world, rest=""):
    return f"/dashboard/apps/{world.app.app_id}/audit{rest}"


def _types(page) -> list[str]:
    return [row.find("th").text.strip() for row in page.html.select("#events tbody tr")]


def _filter_value(page, name: str) -> str:
    element = page.html.find(id=name)
    if element.name == "select":
        return element.find("option", selected=True)["value"]
    return element["value"]


def test_newest_first_with_every_column(webapp, world):
    page = webapp.get(_path(world))
    assert _types(page) == ["user.disabled", "login.succeeded", "login.failed",
                            "login.succeeded"]
    failed = page.html.select("#events tbody tr")[2]
    assert "tenant_denied" in failed.text and "failure" in failed.text
    assert '{"attempt": 3}' in failed.text
    assert page.html.find("a", id="csv-link")["href"].endswith("/audit.csv")


@pytest.mark.parametrize(("query", "expected"), [
    ({"type": "login.succeeded"}, ["login.succeeded", "login.succeeded"]),
    ({"outcome": "failure"}, ["login.failed"]),
    ({"since": "2026-03-09"}, ["user.disabled", "login.succeeded", "login.failed"]),
    ({"until": "2026-03-09"}, ["login.failed", "login.succeeded"]),
    ({"since": "2026-03-10", "until": "2026-03-10"}, ["login.succeeded"]),
    ({"type": "logout"}, []),
], ids=["type", "outcome", "since", "until-inclusive", "one-day", "none"])
def test_filters(webapp, world, query, expected):
    page = webapp.get(_path(world), query)
    assert _types(page) == expected
    assert {name: _filter_value(page, name) for name in query} == query
    if not expected:
        assert "No events match these filters." in page.text


def test_filter_by_user(webapp, world):
    page = webapp.get(_path(world), {"user_id": str(world.user.id)})
    assert _types(page) == ["user.disabled", "login.succeeded", "login.succeeded"]


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"outcome": "maybe"}, "outcome", "success or failure"),
    ({"user_id": "alice"}, "user_id", "user id"),
    ({"since": "10/03/2026"}, "since", "YYYY-MM-DD"),
    ({"since": "2026-03-10", "until": "2026-03-09"}, "until", "before the start"),
], ids=["outcome", "user-id", "date", "order"])
def test_bad_filters_are_shown_inline(webapp, world, query, field, message):
    page = webapp.get(_path(world), query, status=400)
    assert message in page.html.find(id=f"{field}-error").text
    assert _types(page) == []


def test_pages_follow_the_cursor_and_keep_the_filters(webapp, db, world):
    for n in range(60):
        make_event(db, world.app, "token.issued", at=DAY - dt.timedelta(minutes=n))
    db.commit()
    first = webapp.get(_path(world), {"type": "token.issued"})
    assert len(_types(first)) == 50
    second = first.click(linkid="next-page")
    assert "type=token.issued" in second.request.url
    assert _types(second) == ["token.issued"] * 10
    assert second.html.find(id="next-page") is None
    webapp.get(_path(world), {"cursor": "garbage"}, status=400)


def test_csv_download_uses_the_same_filters(webapp, world):
    page = webapp.get(_path(world), {"type": "login.succeeded", "since": "2026-03-01"})
    response = page.click(linkid="csv-link")
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="audit-{world.app.app_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["type"] for r in rows] == ["login.succeeded", "login.succeeded"]
    assert rows[0]["at"] < rows[1]["at"]  # oldest first in the file
    assert rows[0]["external_id"] == "alice"


def test_csv_cells_cannot_run_as_formulas(webapp, world):
    response = webapp.get(_path(world, ".csv"), {"type": "user.disabled"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["external_id"].startswith("'=")


def test_csv_details_are_json(webapp, db, world):
    details = {"via": "api", "fields": ["name", "redirect_uris"], "grace": 0, "ok": True,
               "note": None, "name": "Zoë's app"}
    make_event(db, world.app, "app.updated", at=DAY, details=details)
    db.commit()
    response = webapp.get(_path(world, ".csv"), {"type": "app.updated"})
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert json.loads(row["details"]) == details
    # Compact with sorted keys: the same details always make the same cell.
    assert row["details"] == json.dumps(details, sort_keys=True, separators=(",", ":"),
                                        ensure_ascii=False)
    logins = list(csv.DictReader(io.StringIO(webapp.get(
        _path(world, ".csv"), {"type": "login.succeeded"}).text)))
    assert [r["details"] for r in logins] == ["", ""]  # no details: an empty cell


def test_csv_with_bad_filters_is_refused(webapp, world):
    response = webapp.get(_path(world, ".csv"), {"user_id": "nope"}, status=400)
    assert "user id" in response.text
