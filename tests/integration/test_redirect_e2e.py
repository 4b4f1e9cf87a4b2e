"""The redirect login over real HTTP: a real tenant endpoint (the Python example)
and concurrent callbacks against a threaded server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of, tenant_token
from tests.live import committed_app, live_server, point_app_at, sign_in_at_tenant

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def python_tenant():
    """Starts examples/python/tenant_endpoint.py; yields (base URL, start function)."""
    processes = []

    def start(secret: str) -> str:
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "examples/python/tenant_endpoint.py"),
             "--port", "0"],
            env=dict(os.environ, BRIDGEKEEPER_SECRET=secret),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        processes.append(process)
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, f"tenant endpoint did not start: {line!r} {process.stderr.read()}"
        return match.group(0)

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=5)


def test_full_login_through_the_python_example(app_settings, python_tenant):
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="http://127.0.0.1:9/auth") as (app, secrets):
        tenant_url = python_tenant(secrets["custom_auth"]) + "/auth"
        with live_server(app_settings) as base:
            point_app_at(app_settings, app, tenant_url)
            verifier, challenge = pkce_pair()
            with httpx.Client(base_url=base, timeout=10) as client:
                start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
                    "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge,
                    "state": "xyz"})
                assert start.status_code == 302
                verdict = sign_in_at_tenant(start.headers["location"], "alice", "wonderland")
                back = client.get(verdict.headers["location"])
                assert back.status_code == 302, back.text
                result = query_of(back.headers["location"])
                assert result["state"] == "xyz"
                tokens = client.post(f"/v1/apps/{app.app_id}/token", data={
                    "grant_type": "authorization_code", "code": result["code"],
                    "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier}).json()
                jwks = client.get(f"/v1/apps/{app.app_id}/.well-known/jwks.json").json()
                key = jwt.PyJWKSet.from_dict(jwks).keys[0].key
                claims = jwt.decode(tokens["access_token"], key, algorithms=["ES256"],
                                    audience=app.app_id, issuer=f"{base}/v1/apps/{app.app_id}")
                assert claims["ext"] == "1001" and claims["sub"] == tokens["user"]["id"]
                assert claims["sid"]
                me = client.get(f"/v1/apps/{app.app_id}/me",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
                assert me.json()["custom"] == {"plan": "pro", "lang": "en"}

                # A refusal comes back to the app instead of stranding the user.
                again = client.get(f"/v1/apps/{app.app_id}/authorize", params={
                    "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge})
                refused = sign_in_at_tenant(again.headers["location"], "alice", "nope")
                denied = client.get(refused.headers["location"])
                assert query_of(denied.headers["location"])["reason"] == "tenant_denied"


def test_fifty_concurrent_callbacks_yield_exactly_one_code(app_settings):
    fields = {"redirect_uris": [CLIENT_REDIRECT],
              "custom_auth_endpoint": "https://tenant.example.com/auth"}
    with (committed_app(app_settings, **fields) as (app, secrets),
          live_server(app_settings, threads=16) as base,
          httpx.Client(base_url=base, timeout=20) as client):
        start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]})
        state = query_of(start.headers["location"])["state"]
        token = tenant_token(secrets["custom_auth"], state=state)
        cookies = dict(client.cookies)

        def call(_):
            with httpx.Client(base_url=base, timeout=20, cookies=cookies) as c:
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
