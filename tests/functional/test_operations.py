"""Probes, request ids, JSON errors and JSON logs."""

from __future__ import annotations

import json
import logging

import webtest

from saas.config import configure
from saas.logging import BridgekeeperJsonFormatter


def test_healthz_and_readyz(webapp, registry):
    assert webapp.get("/healthz").json == {"status": "ok"}
    ready = webapp.get("/readyz").json
    assert ready["status"] == "ok" and ready["checks"] == {"postgres": "ok", "redis": "ok"}
    assert set(ready["sync"]) == {"backlog", "oldest_pending_age_seconds", "in_flight",
                                  "dead_letters", "shards"}
    layout = registry["saas.event_streams"]  # one stream unless the run sets more
    assert [shard["shard"] for shard in ready["sync"]["shards"]] == \
        [name for name, _key in layout.named_keys()]


def test_metrics_expose_the_sync_figures(webapp, registry):
    client, layout = registry["saas.redis"], registry["saas.event_streams"]
    shard = layout.key(0)
    client.delete(*layout.stream_keys())
    client.xadd(shard, {"event": "{}"})
    try:
        text = webapp.get("/metrics").text
    finally:
        client.delete(shard)  # other tests of this worker read every shard
    assert "# TYPE bridgekeeper_sync_backlog gauge" in text
    assert "bridgekeeper_sync_backlog 1\n" in text and "bridgekeeper_redis_up 1" in text
    assert 'bridgekeeper_sync_shard_backlog{shard="0"} 1\n' in text


def test_readyz_names_the_failing_dependency(app_settings):
    broken = dict(
        app_settings,
        **{"sqlalchemy.url": "postgresql+psycopg://postgres@127.0.0.1:1/none"},
    )
    app = webtest.TestApp(configure(broken).make_wsgi_app())
    response = app.get("/readyz", status=503)
    assert response.json["failing"] == ["postgres"]
    assert response.json["checks"]["redis"] == "ok"


def test_readyz_names_the_database_it_checks(app_settings, tmp_path):
    """development.ini's SQLite is reported as sqlite, not as PostgreSQL."""
    sqlite = dict(app_settings, **{"sqlalchemy.url": f"sqlite:///{tmp_path}/bk.sqlite"})
    ready = webtest.TestApp(configure(sqlite).make_wsgi_app()).get("/readyz").json
    assert ready["status"] == "ok" and ready["checks"] == {"sqlite": "ok", "redis": "ok"}
    missing = dict(app_settings, **{"sqlalchemy.url": f"sqlite:///{tmp_path}/no/such/dir.db"})
    down = webtest.TestApp(configure(missing).make_wsgi_app()).get("/readyz", status=503)
    assert down.json["failing"] == ["sqlite"] and down.json["checks"]["sqlite"] == "unreachable"


def test_redis_down_gives_503_store_unavailable_not_500(app_settings):
    broken = dict(app_settings, **{"redis.url": "redis://127.0.0.1:1/0"})
    app = webtest.TestApp(configure(broken).make_wsgi_app())
    ready = app.get("/readyz", status=503)
    assert ready.json["failing"] == ["redis"]
    # The dashboard needs its session store: a clear 503, never a 500.
    app.set_cookie("bk_session", "x" * 43)
    page = app.get("/dashboard/apps", headers={"Accept": "application/json"}, status=503)
    assert page.json["reason"] == "store_unavailable"
    assert page.headers["Retry-After"]


def test_request_id_is_kept_when_sane_and_replaced_when_not(webapp):
    kept = webapp.get("/healthz", headers={"X-Request-ID": "abc-123-def-456"})
    assert kept.headers["X-Request-ID"] == "abc-123-def-456"
    replaced = webapp.get("/healthz", headers={"X-Request-ID": "bad id\r\nwith junk"})
    assert replaced.headers["X-Request-ID"] != "bad id\r\nwith junk"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_errors_are_json_with_the_request_id_or_html(webapp):
    json_error = webapp.get("/no/such/page", headers={"Accept": "application/json"}, status=404)
    assert json_error.json["reason"] == "not_found"
    assert json_error.json["request_id"] == json_error.headers["X-Request-ID"]
    html_error = webapp.get("/no/such/page", headers={"Accept": "text/html"}, status=404)
    assert "not_found" in html_error.text and html_error.content_type == "text/html"


def test_logs_are_one_json_line(webapp, caplog):
    formatter = BridgekeeperJsonFormatter()
    with caplog.at_level(logging.INFO, logger="saas.access"):
        response = webapp.get("/healthz?token=should-not-appear")
    records = [r for r in caplog.records if r.name == "saas.access"]
    assert records
    line = formatter.format(records[-1])
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert entry["path"] == "/healthz" and entry["status"] == 200
    assert "should-not-appear" not in line
