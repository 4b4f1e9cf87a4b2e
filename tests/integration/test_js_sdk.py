"""The JavaScript SDK (sdk/js): its Node test suite, the SDK against a live
server with the Python example as tenant endpoint, and what the server does
for it — ``GET /v1/sdk.js`` and cross-origin access to the app's endpoints."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import httpx
import jwt
import pytest

from tests.live import (
    committed_app,
    live_server,
    point_app_at,
    python_example,
    serve_wsgi,
)
from tests.waiting import run

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDK_DIR = os.path.join(ROOT, "sdk", "js")
SDK_SOURCE = os.path.join(SDK_DIR, "src", "bridgekeeper.js")
APP_ORIGIN = "http://127.0.0.1:5173"  # a dev server's origin: the loopback URI allows any port


def node() -> str:
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("Node.js 20+ is required for the JavaScript SDK tests: `node` is not on PATH",
                    pytrace=False)
    version = run([executable, "--version"], capture_output=True, text=True,
                  check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"Node.js 20+ is required for the JavaScript SDK tests, found {version}",
                    pytrace=False)
    return executable


def run_node_tests(target: str, env: dict[str, str]) -> str:
    completed = run([node(), "--test", target], cwd=ROOT, env=env, capture_output=True,
                    text=True)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"node --test {target} failed:\n{output}"
    assert "# fail 0" in output and "# cancelled 0" in output, output
    return output


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BK_LIVE_")}


@pytest.fixture
def live(app_settings):
    """A live server, an app with the in-app form and custom tokens on, pointing at
    the Python example endpoint; its redirect URI (and so its origin) is loopback."""
    with committed_app(app_settings, redirect_uris=["http://127.0.0.1/"], backchannel=True,
                       custom_token_enabled=True) as (app, secrets), \
            serve_wsgi(python_example(secrets["custom_auth"])) as tenant, \
            live_server(app_settings) as base:
        point_app_at(app_settings, app, tenant + "/auth")
        yield app, secrets, base


def test_node_unit_suite_passes():
    output = run_node_tests("sdk/js/test/", clean_env())
    assert "# pass " in output


def test_sdk_against_the_live_server(live):
    app, secrets, base = live
    now = int(time.time())
    custom_token = jwt.encode(
        {"sub": "sky-7", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
         "skyprofile": {"name": "Sky"}},
        secrets["custom_token"], algorithm="HS256")
    env = dict(clean_env(), BK_LIVE_BASE_URL=base, BK_LIVE_APP_ID=app.app_id,
               BK_LIVE_CUSTOM_TOKEN=custom_token, BK_LIVE_CUSTOM_SUB="sky-7")
    output = run_node_tests("sdk/js/test/live.test.js", env)
    assert "# pass 5" in output and "# skipped 0" in output, output


def test_sdk_js_is_served_with_caching_headers(live):
    _app, _secrets, base = live
    with open(SDK_SOURCE, "rb") as source:
        expected = source.read()
    response = httpx.get(base + "/v1/sdk.js")
    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # A module script from another origin is fetched with CORS.
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag = response.headers["ETag"]
    assert etag.startswith('"sha256-') and etag.endswith('"')
    again = httpx.get(base + "/v1/sdk.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    changed = httpx.get(base + "/v1/sdk.js", headers={"If-None-Match": '"sha256-other"'})
    assert changed.status_code == 200
    assert httpx.head(base + "/v1/sdk.js").status_code == 200


def _preflight(base, app_id, origin, path="/login/custom", method="POST"):
    return httpx.options(f"{base}/v1/apps/{app_id}{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type"})


def test_cors_lets_the_apps_origins_call_its_endpoints(live):
    app, _secrets, base = live
    for path, method in (("/login/custom", "POST"), ("/token", "POST"), ("/me", "GET"),
                         ("/logout", "POST"), ("/login/custom-token", "POST")):
        answer = _preflight(base, app.app_id, APP_ORIGIN, path, method)
        assert answer.status_code == 204, path
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert answer.headers["Access-Control-Allow-Methods"] == "GET, POST"
        assert answer.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
        assert "Access-Control-Allow-Credentials" not in answer.headers
        assert "Origin" in answer.headers["Vary"]

    login = httpx.post(f"{base}/v1/apps/{app.app_id}/login/custom", headers={"Origin": APP_ORIGIN},
                       json={"data": {"id": "alice", "passphrase": "wonderland"}})
    assert login.status_code == 200
    assert login.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Retry-After" in login.headers["Access-Control-Expose-Headers"]
    assert login.headers["Vary"] == "Origin"
    # Refusals are readable too: the app must see access_denied, never a CORS error.
    refused = httpx.post(f"{base}/v1/apps/{app.app_id}/login/custom",
                         headers={"Origin": APP_ORIGIN},
                         json={"data": {"id": "alice", "passphrase": "nope"}})
    assert refused.status_code == 401 and refused.json()["reason"] == "tenant_denied"
    assert refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_cors_refuses_other_origins(live):
    app, _secrets, base = live
    for origin in ("https://evil.example.com", "http://localhost:5173", "null",
                   "https://127.0.0.1:5173"):
        answer = _preflight(base, app.app_id, origin)
        assert answer.status_code == 204
        assert "Access-Control-Allow-Origin" not in answer.headers, origin
        call = httpx.post(f"{base}/v1/apps/{app.app_id}/login/custom", headers={"Origin": origin},
                          json={"data": {"id": "alice", "passphrase": "nope"}})
        assert call.status_code == 401
        assert "Access-Control-Allow-Origin" not in call.headers, origin
    # An unknown app allows no one; the dashboard and other paths get no CORS at all.
    assert "Access-Control-Allow-Origin" not in _preflight(base, "zzzz9999", APP_ORIGIN).headers
    authorize = httpx.get(f"{base}/v1/apps/{app.app_id}/authorize",
                          headers={"Origin": APP_ORIGIN})
    assert "Access-Control-Allow-Origin" not in authorize.headers
