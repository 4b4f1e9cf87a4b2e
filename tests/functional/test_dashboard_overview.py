"""The app overview: the logins chart (inline SVG with a table), failures by reason."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from saas.audit.types import Outcome
from saas.dashboard.charts import RANGES, ReasonBar, login_chart, nice_step, reason_bars
from tests.factories import make_app
from tests.flows import query_of
from tests.functional.dashboard_helpers import build_world, make_event, sign_in


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    now = dt.datetime.now(dt.UTC)
    for hours in (0, 0, 1, 5):
        make_event(db, world.app, "login.succeeded", at=now - dt.timedelta(hours=hours))
    make_event(db, world.app, "custom_token.succeeded", at=now - dt.timedelta(hours=2))
    for hours, reason in ((0, "tenant_denied"), (3, "tenant_denied"), (4, "token_expired")):
        make_event(db, world.app, "login.failed", at=now - dt.timedelta(hours=hours),
                   outcome=Outcome.FAILURE, reason=reason)
    make_event(db, world.app, "login.succeeded", at=now - dt.timedelta(days=3))
    make_event(db, world.app, "login.succeeded", at=now - dt.timedelta(days=40))
    make_event(db, world.app, "token.issued", at=now)  # not a login
    db.commit()
    sign_in(webapp, world.owner.email)
    return world


def _path(world):
    return f"/dashboard/apps/{world.app.app_id}"


def test_last_24_hours_by_hour(webapp, world):
    page = webapp.get(_path(world))
    svg = page.html.find("svg", id="login-chart")
    assert svg["role"] == "img"
    assert svg["aria-labelledby"] == "chart-title chart-desc"
    assert svg.find("title", id="chart-title").text.startswith("Logins and failures per hour")
    assert "5 successful logins and 3 failures" in svg.find("desc").text
    assert len(svg.select("rect.bar-logins")) == 24 and len(svg.select("rect.bar-failures")) == 24
    assert page.html.find(id="total-logins").text == "5"
    assert page.html.find(id="total-failures").text == "3"
    rows = page.html.select("#chart-table tbody tr")
    assert len(rows) == 24
    assert sum(int(r.select("td")[0].text) for r in rows) == 5
    reasons = [li.text.split() for li in page.html.select("#failure-reasons li")]
    assert reasons == [["tenant_denied", "2"], ["token_expired", "1"]]
    # The meters' lengths are SVG attributes: the CSP refuses inline styles.
    meters = page.html.select("#failure-reasons svg.meter rect.meter-fill")
    assert [rect["width"] for rect in meters] == ["100.0", "50.0"]
    assert page.html.select("#failure-reasons [style]") == []
    toggle = page.html.select_one(".segmented [aria-current=true]")
    assert toggle.text == "Last 24 hours"


def test_last_30_days_by_day(webapp, world):
    page = webapp.get(_path(world), {"range": "30d"})
    svg = page.html.find("svg", id="login-chart")
    assert len(svg.select("rect.bar-logins")) == 30
    assert page.html.find(id="total-logins").text == "6"  # the one 40 days ago is out
    assert page.html.select_one(".segmented [aria-current=true]").text == "Last 30 days"


def test_an_unknown_range_falls_back_to_24_hours(webapp, world):
    page = webapp.get(_path(world), {"range": "1y"})
    assert len(page.html.select("#login-chart rect.bar-logins")) == 24


def test_an_app_without_logins_shows_an_empty_chart(webapp, db, secret_box, world):
    quiet, _ = make_app(db, secret_box, world.tenant_id, name="Quiet")
    db.commit()
    page = webapp.get(f"/dashboard/apps/{quiet.app_id}")
    assert page.html.find(id="total-logins").text == "0"
    assert "No failed logins in this period." in page.text
    heights = {rect["height"] for rect in page.html.select("#login-chart rect.bar")}
    assert heights == {"0.0"}


@pytest.mark.parametrize(("peak", "step"), [(0, 1), (4, 1), (5, 2), (9, 5), (20, 5),
                                            (21, 10), (99, 50), (1001, 500)])
def test_axis_steps_are_round(peak, step):
    assert nice_step(peak) == step


def test_bars_stay_inside_the_plot_and_scale_with_their_value():
    start = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    buckets = [{"start": (start + dt.timedelta(hours=h)).isoformat(), "logins": h,
                "failures": h % 3} for h in range(24)]
    chart = login_chart({"bucket": "hour", "buckets": buckets})
    assert [value for _y, value in chart.gridlines] == [0, 10, 20, 30, 40]
    for bar in chart.bars:
        assert chart.left <= bar.x and bar.x + bar.width <= chart.right
        assert chart.top <= bar.y and bar.y + bar.height == pytest.approx(chart.bottom, abs=.02)
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.title == "23:00: 23 logins"
    assert tallest.height == pytest.approx((chart.bottom - chart.top) * 23 / 40, abs=.01)
    assert chart.xlabels[0][1] == "00:00" and len(chart.xlabels) == 8
    assert (chart.logins, chart.failures) == (276, 24)


def test_reason_bars_are_sized_against_the_most_frequent_reason():
    assert reason_bars({"tenant_denied": 3, "token_expired": 2, "user_disabled": 1}) == [
        ReasonBar("tenant_denied", 3, 100.0), ReasonBar("token_expired", 2, 66.7),
        ReasonBar("user_disabled", 1, 33.3)]
    assert reason_bars({}) == []


def test_ranges_start_on_a_bucket_boundary():
    now = dt.datetime(2026, 3, 10, 15, 42, 7, tzinfo=dt.UTC)
    assert RANGES["24h"].since(now) == dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC)
    assert RANGES["30d"].since(now) == dt.datetime(2026, 2, 9, tzinfo=dt.UTC)


def test_the_hosted_sign_in_form_can_be_tried_from_the_overview(webapp, world, db):
    page = webapp.get(_path(world))
    assert page.html.find(id="try-hosted-form") is None  # back-channel off
    assert "needs a custom-auth endpoint, a redirect URI and the back-channel" in page.text

    world.app.backchannel = True
    world.app.custom_auth_endpoint = "https://tenant.example.com/auth"
    world.app.redirect_uris = ["myapp://cb", "https://app.example.com/callback"]
    db.commit()
    link = webapp.get(_path(world)).html.find(id="try-hosted-form")
    assert link.text == "Try the hosted sign-in form"
    url = urlsplit(link["href"])
    assert (url.scheme, url.netloc, url.path) == ("http", "bk.test",
                                                  f"/v1/apps/{world.app.app_id}/login")
    assert query_of(link["href"])["redirect_uri"] == "https://app.example.com/callback"
    form = webapp.get(f"{url.path}?{url.query}")
    assert form.status_int == 200
    assert form.html.find("h1").text == "Sign in to Space Run"
    assert form.html.find("input", attrs={"name": "state"})["value"]
    again = webapp.get(_path(world)).html.find(id="try-hosted-form")["href"]
    assert query_of(again)["code_challenge"] != query_of(link["href"])["code_challenge"]


def test_the_overview_shows_the_issuer_discovery_url_and_client_type(webapp, world, db):
    page = webapp.get(_path(world))
    issuer = f"http://bk.test/v1/apps/{world.app.app_id}"
    assert page.html.find(id="url-issuer").text == issuer
    assert page.html.find(id="url-discovery").text == \
        issuer + "/.well-known/openid-configuration"
    assert "confidential" in page.html.find(id="client-type").text
    world.app.client_type = "public"
    db.commit()
    assert "public" in webapp.get(_path(world)).html.find(id="client-type").text
