"""The Redis *server* stopped, killed -9 or frozen (SIGSTOP) during a login.

A private ``redis-server`` (AOF, fsync always) is the login path's store. The
fault hits between authorize and callback: every login endpoint answers 503
``store_unavailable`` quickly, with no redirect and no code; once the server
is back (restarted on the same data, or resumed), nothing of the failed
requests is left half-done — the state is still unused, no code, session,
user overlay or success event exists — and the same login completes.

Readiness refuses a store that may evict keys (``maxmemory-policy``).
"""

from __future__ import annotations

import time

import pytest
import webtest

from saas.config import configure
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of, tenant_token
from tests.live import committed_app
from tests.servers import private_redis
from tests.store_state import audit_types, keys_by_kind, stream_events, upserts

pytestmark = [pytest.mark.integration, pytest.mark.faults]

QUICK = 6  # seconds: a frozen store must not hang a request for longer


def _web(app_settings, redis_url: str) -> webtest.TestApp:
    app = configure(dict(app_settings, **{"redis.url": redis_url})).make_wsgi_app()
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test"})


def _json_503(response) -> None:
    assert response.status_int == 503, response.text[:300]
    assert response.json["reason"] == "store_unavailable"
    assert response.headers["Retry-After"]
    assert "Location" not in response.headers


@pytest.mark.parametrize("fault", ["stop", "kill", "pause"])
def test_a_login_survives_the_store_server_going_away(app_settings, tmp_path, fault):
    prefix = app_settings["saas.redis_prefix"]
    with private_redis(tmp_path) as server, committed_app(
            app_settings, redirect_uris=[CLIENT_REDIRECT],
            custom_auth_endpoint="https://tenant.example.com/auth") as (app, secrets):
        web = _web(app_settings, server.url)
        secret = secrets["custom_auth"]
        login = Login(web, app.app_id, secret)
        token = tenant_token(secret, state=login.state, user_id="kim", custom={"k": 1})
        json_ = {"Accept": "application/json"}

        getattr(server, fault)()
        started = time.monotonic()
        _json_503(web.get(f"/v1/apps/{app.app_id}/callback",
                          {"state": login.state, "token": token}, headers=json_, status="*"))
        _json_503(web.get(f"/v1/apps/{app.app_id}/authorize", {
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]},
            headers=json_, status="*"))
        _json_503(web.post(f"/v1/apps/{app.app_id}/token", {
            "grant_type": "refresh_token", "refresh_token": "r" * 43}, status="*"))
        assert time.monotonic() - started < 3 * QUICK

        if fault == "pause":
            server.resume()
        else:
            server.start()  # same port, same append-only file
        client = server.client()

        # Nothing half-done: the state is live and unused; no code, session,
        # overlay or replay marker; the stream holds only the login's start.
        kinds = keys_by_kind(client, prefix)
        assert kinds.get("state") == {f"{prefix}:{{{app.app_id}}}:state:{login.state}"}
        for kind in ("state-used", "code", "sess", "rt", "pending", "token-used"):
            assert kind not in kinds, kind
        events = stream_events(client, prefix)
        assert audit_types(events) == {"login.started": 1}
        assert upserts(events) == []

        done = web.get(f"/v1/apps/{app.app_id}/callback", {"state": login.state, "token": token})
        tokens = login.exchange(query_of(done.location)["code"]).json
        assert tokens["user"]["external_id"] == "kim"
        events = stream_events(client, prefix)
        assert audit_types(events) == {"login.started": 1, "login.succeeded": 1,
                                       "token.issued": 1}
        assert [u["external_id"] for u in upserts(events)] == ["kim"]
        client.close()


def test_readyz_refuses_a_store_that_may_evict(app_settings, tmp_path):
    with private_redis(tmp_path, **{"maxmemory": "64mb",
                                    "maxmemory-policy": "allkeys-lru"}) as server:
        web = _web(app_settings, server.url)
        ready = web.get("/readyz", status=503).json
        assert ready["status"] == "unavailable" and ready["failing"] == ["redis"]
        assert ready["checks"] == {
            "postgres": "ok",
            "redis": "maxmemory-policy is allkeys-lru; it must be noeviction"}

        with server.client() as client:
            client.config_set("maxmemory-policy", "noeviction")
        assert web.get("/readyz", status=200).json["checks"]["redis"] == "ok"
