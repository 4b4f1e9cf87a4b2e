"""Concurrent callbacks against a real threaded server: one state, one code."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of, tenant_token
from tests.live import committed_app, live_server
from tests.waiting import REQUEST_SECONDS

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_fifty_concurrent_callbacks_yield_exactly_one_code(app_settings):
    fields = {"redirect_uris": [CLIENT_REDIRECT],
              "custom_auth_endpoint": "https://tenant.example.com/auth"}
    with (committed_app(app_settings, **fields) as (app, secrets),
          live_server(app_settings) as base,
          httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as client):
        start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]})
        state = query_of(start.headers["location"])["state"]
        token = tenant_token(secrets["custom_auth"], state=state)
        cookies = dict(client.cookies)

        def call(_):
            with httpx.Client(base_url=base, timeout=REQUEST_SECONDS, cookies=cookies) as c:
                return c.get(f"/v1/apps/{app.app_id}/callback",
                             params={"state": state, "token": token},
                             headers={"Accept": "application/json"})

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(call, range(50)))
    codes = [r for r in responses if r.status_code == 302
             and "code" in query_of(r.headers["location"])]
    assert len(codes) == 1
    others = [r for r in responses if r not in codes]
    assert all(r.status_code == 400 and r.json()["reason"] == "state_replayed" for r in others)
