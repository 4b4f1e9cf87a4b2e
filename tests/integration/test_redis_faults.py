"""Redis paused or cut in the middle of a login: 503 store_unavailable, no code,
nothing half-done; once Redis answers again, the same login completes."""

from __future__ import annotations

import time

import pytest
import webtest

from saas.config import configure
from tests.faults import redis_proxy
from tests.flows import CLIENT_REDIRECT, Login, query_of, tenant_token
from tests.live import committed_app

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fault", ["pause", "cut"])
def test_login_survives_a_redis_fault(app_settings, fault):
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="https://tenant.example.com/auth") as (app, secrets), \
            redis_proxy(app_settings["redis.url"]) as proxy:
        settings = dict(app_settings, **{"redis.url": f"redis://127.0.0.1:{proxy.port}/0"})
        web = webtest.TestApp(configure(settings).make_wsgi_app(),
                              extra_environ={"HTTP_HOST": "bk.test"})
        login = Login(web, app.app_id, secrets["custom_auth"])
        token = tenant_token(secrets["custom_auth"], state=login.state)

        getattr(proxy, fault)()
        started = time.monotonic()
        failed = web.get(f"/v1/apps/{app.app_id}/callback",
                         {"state": login.state, "token": token},
                         headers={"Accept": "application/json"}, status=503)
        assert time.monotonic() - started < 6
        assert failed.json["reason"] == "store_unavailable"
        assert "Location" not in failed.headers  # no code, no redirect

        proxy.resume()
        done = web.get(f"/v1/apps/{app.app_id}/callback", {"state": login.state, "token": token})
        assert "code" in query_of(done.location)  # the state was left intact
        tokens = login.exchange(query_of(done.location)["code"]).json
        assert tokens["token_type"] == "Bearer"
        assert Login(web, app.app_id, secrets["custom_auth"]).tokens(user_id="after")
