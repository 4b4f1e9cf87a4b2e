"""Rate limits on the login entry points: 429 with Retry-After, per app."""

from __future__ import annotations

import uuid

import webtest

from saas.config import configure
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT, pkce_pair


def test_a_burst_is_refused_and_other_apps_are_unaffected(app_settings, db, passwords,
                                                          secret_box, registry):
    limited = configure(dict(app_settings, **{
        "saas.redis_prefix": f"{app_settings['saas.redis_prefix']}:rl:{uuid.uuid4().hex[:6]}",
        "saas.ratelimit.login_ip.rate": "1/minute",
        "saas.ratelimit.login_ip.burst": "3",
    })).make_wsgi_app()
    client = webtest.TestApp(limited, extra_environ={"HTTP_HOST": "bk.test"})
    apps = []
    for name in ("flooded", "quiet"):
        member = make_member(db, passwords)
        app, _ = make_app(db, secret_box, member.tenant_id, name=name,
                          custom_auth_endpoint="https://tenant.example.com/auth",
                          redirect_uris=[CLIENT_REDIRECT])
        limited.registry["saas.app_cache"].store(app)
        apps.append(app)
    flooded, quiet = apps

    def authorize(app, status):
        return client.get(f"/v1/apps/{app.app_id}/authorize", {
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]},
            headers={"Accept": "application/json"}, status=status)

    for _ in range(3):
        authorize(flooded, 302)
    refused = authorize(flooded, 429)
    assert refused.json["reason"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert authorize(quiet, 302).status_int == 302  # another tenant's app is unaffected
    # A different client address has its own bucket within the app.
    other_ip = client.get(f"/v1/apps/{flooded.app_id}/authorize", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]},
        extra_environ={"REMOTE_ADDR": "203.0.113.7"})
    assert other_ip.status_int == 302
    custom = client.post_json(f"/v1/apps/{flooded.app_id}/login/custom-token", {"token": "x"},
                              status=429)
    assert custom.json["reason"] == "rate_limited"


def test_spoofed_forwarded_for_does_not_buy_a_new_bucket(app_settings, db, passwords,
                                                         secret_box):
    limited = configure(dict(app_settings, **{
        "saas.redis_prefix": f"{app_settings['saas.redis_prefix']}:rl:{uuid.uuid4().hex[:6]}",
        "saas.ratelimit.login_ip.rate": "1/minute",
        "saas.ratelimit.login_ip.burst": "2",
    })).make_wsgi_app()
    client = webtest.TestApp(limited, extra_environ={"HTTP_HOST": "bk.test",
                                                     "REMOTE_ADDR": "198.51.100.9"})
    member = make_member(db, passwords)
    app, _ = make_app(db, secret_box, member.tenant_id,
                      custom_auth_endpoint="https://tenant.example.com/auth",
                      redirect_uris=[CLIENT_REDIRECT])
    limited.registry["saas.app_cache"].store(app)
    statuses = [
        client.get(f"/v1/apps/{app.app_id}/authorize",
                   {"redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]},
                   headers={"X-Forwarded-For": f"10.0.0.{n}"}, expect_errors=True).status_int
        for n in range(4)
    ]
    assert statuses == [302, 302, 429, 429]
