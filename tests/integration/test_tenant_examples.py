"""Full logins over real HTTP through each example tenant endpoint: Python
(examples/python, PyJWT) and Node (examples/node, express + jsonwebtoken)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx
import jwt
import pytest

from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of
from tests.live import committed_app, live_server, point_app_at, sign_in_at_tenant
from tests.waiting import REQUEST_SECONDS, processes, run, wait_until

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, "examples", "node")
PYTHON_SCRIPT = os.path.join(ROOT, "examples", "python", "tenant_endpoint.py")
NPM_TIMEOUT = 600


def _node_dependencies_resolve(node: str) -> bool:
    check = run([node, "-e", "require.resolve('express'); require.resolve('jsonwebtoken')"],
                cwd=NODE_DIR, capture_output=True)
    return check.returncode == 0


@pytest.fixture(scope="session")
def node_binary() -> str:
    """`node`, with the example's dependencies installed (`npm ci` when missing;
    `make test` normally did it already)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required for the Node example test: `node` is not on PATH",
                    pytrace=False)
    # xdist workers may get here together: one installs, the others wait.
    lock_path = os.path.join(tempfile.gettempdir(), "bridgekeeper-node-example.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _node_dependencies_resolve(node):
            npm = shutil.which("npm") or pytest.fail("`npm` is not on PATH", pytrace=False)
            try:
                install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                                         capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                         check=False)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"`npm ci` in examples/node timed out:\n{exc.stderr or ''}",
                            pytrace=False)
            if install.returncode != 0 or not _node_dependencies_resolve(node):
                pytest.fail(f"`npm ci` in examples/node failed (exit {install.returncode}):\n"
                            f"{install.stdout}\n{install.stderr}", pytrace=False)
    return node


def _command(kind: str, request) -> tuple[list[str], str]:
    if kind == "python":
        return [sys.executable, PYTHON_SCRIPT, "--port", "0"], ROOT
    node = request.getfixturevalue("node_binary")
    return [node, os.path.join(NODE_DIR, "tenant-endpoint.js"), "--port", "0"], NODE_DIR


@pytest.fixture(params=["python", "node"])
def tenant_example(request):
    """Starts the example endpoint; yields a function secret -> base URL."""
    command, cwd = _command(request.param, request)
    started: list[subprocess.Popen] = []

    def start(secret: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "PORT"}
        process = subprocess.Popen(command, cwd=cwd, env=dict(env, BRIDGEKEEPER_SECRET=secret),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()),
                                  daemon=True)
        reader.start()
        # As long as the endpoint starts (slowly, on a busy machine) or until it exits.
        wait_until(lambda: not reader.is_alive() or process.poll() is not None,
                   f"the {request.param} tenant endpoint's first line",
                   progress=processes(process))
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", lines[0] if lines
                             else "")
        if not match:
            process.kill()
            _, err = process.communicate(timeout=5)
            pytest.fail(f"the {request.param} tenant endpoint did not start: {lines!r}\n{err}",
                        pytrace=False)
        return match.group(1)

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.communicate(timeout=5)


@contextlib.contextmanager
def app_at_tenant(app_settings, tenant_example):
    """A committed app whose endpoint is the example; yields (app, base URL)."""
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="http://127.0.0.1:9/auth") as (app, secrets):
        tenant_url = tenant_example(secrets["custom_auth"]) + "/auth"
        with live_server(app_settings) as base:
            point_app_at(app_settings, app, tenant_url)
            yield app, base


def test_full_login_through_the_example(app_settings, tenant_example):
    with app_at_tenant(app_settings, tenant_example) as (app, base), \
            httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as client:
        verifier, challenge = pkce_pair()
        start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge, "state": "xyz"})
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


def test_a_refusal_at_the_example_reaches_the_app(app_settings, tenant_example):
    with app_at_tenant(app_settings, tenant_example) as (app, base), \
            httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as client:
        start = client.get(f"/v1/apps/{app.app_id}/authorize", params={
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1], "state": "abc"})
        refused = sign_in_at_tenant(start.headers["location"], "alice", "nope")
        assert "error=access_denied" in refused.headers["location"]
        denied = client.get(refused.headers["location"])
        assert denied.headers["location"].startswith(CLIENT_REDIRECT + "?")
        result = query_of(denied.headers["location"])
        assert (result["error"], result["reason"], result["state"]) == (
            "access_denied", "tenant_denied", "abc")
        assert "code" not in result


def _request_token(secret: str, **claims) -> str:
    now = int(time.time())
    payload = {"app_id": "abcd1234", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    return jwt.encode({**payload, **claims}, secret, algorithm="HS256",
                      headers={"typ": "bk-request+jwt"})


def test_the_example_sign_in_form_fits_a_phone(tenant_example):
    secret = "example-secret-0123456789abcdef-0123456789"
    form = httpx.get(tenant_example(secret) + "/auth", params={
        "redirect_uri": "http://127.0.0.1:9/v1/apps/abcd1234/callback?flow=custom",
        "state": "s1", "token": _request_token(secret)}, timeout=10)
    assert form.status_code == 200 and "<form" in form.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in form.text


def test_the_example_checks_the_request_token_and_reads_data(tenant_example):
    """Step 1 refuses a forged request token with 401; a request token whose
    `data` holds credentials (server-to-server use) is answered at once."""
    secret = "example-secret-0123456789abcdef-0123456789"
    tenant_url = tenant_example(secret) + "/auth"
    callback = "http://127.0.0.1:9/v1/apps/abcd1234/callback?flow=custom"
    forged = httpx.get(tenant_url, params={
        "redirect_uri": callback, "state": "s1",
        "token": _request_token("not-the-secret-0123456789abcdef-xyz")},
        timeout=REQUEST_SECONDS)
    assert forged.status_code == 401
    verdict = httpx.get(tenant_url, params={
        "redirect_uri": callback, "state": "s2",
        "token": _request_token(secret, data={"id": "bob", "passphrase": "builder"})},
        timeout=REQUEST_SECONDS)
    assert verdict.status_code == 302
    location = verdict.headers["location"]
    assert location.startswith(callback + "&token=")
    result = query_of(location)
    assert result["flow"] == "custom" and result["state"] == "s2"
    claims = jwt.decode(result["token"], secret, algorithms=["HS256"])
    assert claims["user_id"] == "bob-42" and claims["custom"] == {"plan": "free"}
    assert claims["state"] == "s2" and claims["jti"]
    assert isinstance(claims["iat"], int) and claims["exp"] == claims["iat"] + 60
