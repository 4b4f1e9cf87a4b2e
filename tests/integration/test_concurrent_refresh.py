"""Twenty refreshes of one refresh token at once, over real HTTP: one successor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of, tenant_token
from tests.live import committed_app, live_server
from tests.waiting import REQUEST_SECONDS

pytestmark = pytest.mark.integration


def test_twenty_concurrent_refreshes_share_one_successor_and_one_session(app_settings):
    fields = {"redirect_uris": [CLIENT_REDIRECT],
              "custom_auth_endpoint": "https://tenant.example.com/auth"}
    with (committed_app(app_settings, **fields) as (app, secrets),
          live_server(app_settings) as base,
          httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as client):
        verifier, challenge = pkce_pair()
        start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge})
        state = query_of(start.headers["location"])["state"]
        done = client.get(f"/v1/apps/{app.app_id}/callback", params={
            "state": state, "token": tenant_token(secrets["custom_auth"], state=state)})
        code = query_of(done.headers["location"])["code"]
        tokens = client.post(f"/v1/apps/{app.app_id}/token", data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier}).json()
        sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]

        def refresh(_):
            with httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as c:
                return c.post(f"/v1/apps/{app.app_id}/token", data={
                    "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(refresh, range(20)))

    assert not [r for r in responses if r.status_code >= 500]
    ok = [r.json() for r in responses if r.status_code == 200]
    assert len(ok) == 20, [r.text for r in responses]  # all inside the 10 s retry grace
    assert len({body["refresh_token"] for body in ok}) == 1
    assert ok[0]["refresh_token"] != tokens["refresh_token"]
    sids = {jwt.decode(body["access_token"], options={"verify_signature": False})["sid"]
            for body in ok}
    assert sids == {sid}
