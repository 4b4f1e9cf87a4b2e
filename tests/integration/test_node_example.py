"""The redirect login over real HTTP through the Node example endpoint
(examples/node/tenant-endpoint.js, express + jsonwebtoken)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import httpx
import jwt
import pytest

from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of
from tests.live import committed_app, live_server, point_app_at, sign_in_at_tenant

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, "examples", "node")
SCRIPT = os.path.join(NODE_DIR, "tenant-endpoint.js")
START_TIMEOUT = 20
NPM_TIMEOUT = 600


def _dependencies_resolve(node: str) -> bool:
    check = subprocess.run(
        [node, "-e", "require.resolve('express'); require.resolve('jsonwebtoken')"],
        cwd=NODE_DIR, capture_output=True, timeout=30, check=False)
    return check.returncode == 0


@pytest.fixture(scope="session")
def node_binary() -> str:
    """The `node` executable, with the example's dependencies installed (`npm ci`
    when examples/node/node_modules is missing or incomplete)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the Node example test: `node` is not on PATH",
                    pytrace=False)
    # xdist workers may get here together: one installs, the others wait.
    lock_path = os.path.join(tempfile.gettempdir(), "bridgekeeper-node-example.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _dependencies_resolve(node):
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("examples/node/node_modules is missing and `npm` is not on PATH",
                            pytrace=False)
            try:
                install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                                         capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                         check=False)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"`npm ci` in examples/node timed out after {NPM_TIMEOUT} s:\n"
                            f"{exc.stdout or ''}{exc.stderr or ''}", pytrace=False)
            if install.returncode != 0 or not _dependencies_resolve(node):
                pytest.fail(f"`npm ci` in examples/node failed (exit {install.returncode}):\n"
                            f"{install.stdout}\n{install.stderr}", pytrace=False)
    return node


@pytest.fixture
def node_tenant(node_binary):
    """Starts the Node example; yields a function secret -> base URL. Killed at teardown."""
    processes: list[subprocess.Popen] = []

    def start(secret: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "PORT"}
        process = subprocess.Popen(
            [node_binary, SCRIPT, "--port", "0"], cwd=NODE_DIR,
            env=dict(env, BRIDGEKEEPER_SECRET=secret),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        processes.append(process)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout=START_TIMEOUT)
        line = lines[0] if lines else ""
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
        if not match:
            process.kill()
            _, err = process.communicate(timeout=5)
            pytest.fail(f"the Node tenant endpoint did not start: {line!r}\n{err}",
                        pytrace=False)
        return match.group(1)

    yield start
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.communicate(timeout=5)


def test_full_login_through_the_node_example(app_settings, node_tenant):
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="http://127.0.0.1:9/auth") as (app, secrets):
        tenant_url = node_tenant(secrets["custom_auth"]) + "/auth"
        with live_server(app_settings) as base:
            point_app_at(app_settings, app, tenant_url)
            verifier, challenge = pkce_pair()
            with httpx.Client(base_url=base, timeout=10) as client:
                start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
                    "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge,
                    "state": "xyz"})
                assert start.status_code == 302
                assert start.headers["location"].startswith(tenant_url + "?")
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
                assert tokens["user"]["external_id"] == "1001"
                me = client.get(f"/v1/apps/{app.app_id}/me",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
                assert me.status_code == 200
                assert me.json()["custom"] == {"plan": "pro", "lang": "en"}


def test_a_refusal_at_the_node_example_reaches_the_app(app_settings, node_tenant):
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="http://127.0.0.1:9/auth") as (app, secrets):
        tenant_url = node_tenant(secrets["custom_auth"]) + "/auth"
        with live_server(app_settings) as base:
            point_app_at(app_settings, app, tenant_url)
            with httpx.Client(base_url=base, timeout=10) as client:
                start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
                    "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1],
                    "state": "abc"})
                refused = sign_in_at_tenant(start.headers["location"], "alice", "nope")
                assert "error=access_denied" in refused.headers["location"]
                denied = client.get(refused.headers["location"])
                assert denied.status_code == 302
                assert denied.headers["location"].startswith(CLIENT_REDIRECT + "?")
                result = query_of(denied.headers["location"])
                assert result["error"] == "access_denied"
                assert result["reason"] == "tenant_denied"
                assert result["state"] == "abc"
                assert "code" not in result


def _request_token(secret: str, **claims) -> str:
    now = int(time.time())
    payload = {"app_id": "abcd1234", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    return jwt.encode({**payload, **claims}, secret, algorithm="HS256",
                      headers={"typ": "bk-request+jwt"})


def test_the_node_example_checks_the_request_token_and_reads_data(node_tenant):
    """Step 1 refuses a forged request token with 401; a request token whose
    `data` holds credentials (server-to-server use) is answered at once."""
    secret = "node-example-secret-0123456789abcdef"
    tenant_url = node_tenant(secret) + "/auth"
    callback = "http://127.0.0.1:9/v1/apps/abcd1234/callback?flow=custom"

    forged = httpx.get(tenant_url, params={
        "redirect_uri": callback, "state": "s1",
        "token": _request_token("not-the-secret-0123456789abcdef-xyz")}, timeout=10)
    assert forged.status_code == 401

    verdict = httpx.get(tenant_url, params={
        "redirect_uri": callback, "state": "s2",
        "token": _request_token(secret, data={"id": "bob", "passphrase": "builder"})},
        timeout=10)
    assert verdict.status_code == 302
    location = verdict.headers["location"]
    assert location.startswith(callback + "&token=")
    result = query_of(location)
    assert result["flow"] == "custom" and result["state"] == "s2"
    claims = jwt.decode(result["token"], secret, algorithms=["HS256"])
    assert claims["user_id"] == "bob-42" and claims["custom"] == {"plan": "free"}
    assert claims["state"] == "s2" and claims["jti"]
    assert isinstance(claims["iat"], int) and claims["exp"] == claims["iat"] + 60
