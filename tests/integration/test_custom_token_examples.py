"""The custom-token makers of examples/custom-token (Python PyJWT, Node
jsonwebtoken, Ruby ruby-jwt) against a live server: each token logs in once
(DESIGN §5.1), with the profile it carries, and is refused when replayed."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import httpx
import jwt
import pytest

from tests.live import committed_app, live_server
from tests.waiting import REQUEST_SECONDS, run

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_DIR = os.path.join(ROOT, "examples", "custom-token")
NPM_TIMEOUT = 600
INSTALL_HINT = ("run `scripts/install-system-deps` as root (it installs the Debian packages "
                "`ruby` and `ruby-jwt`)")
USER_ENV = ("BRIDGEKEEPER_USER_ID", "BRIDGEKEEPER_USER_EMAIL", "BRIDGEKEEPER_USER_USERNAME")


def _ruby() -> str:
    """`ruby` with the `jwt` gem, or a failure that says how to install them."""
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.fail(f"Ruby is required for the Ruby custom-token example but `ruby` is not on "
                    f"PATH: {INSTALL_HINT}", pytrace=False)
    check = run([ruby, "-e", "require 'jwt'"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.fail(f"the Ruby `jwt` gem is missing (`require 'jwt'` failed: "
                    f"{check.stderr.strip()}): {INSTALL_HINT}", pytrace=False)
    return ruby


def _jsonwebtoken_resolves(node: str) -> bool:
    check = run([node, "-e", "require.resolve('jsonwebtoken')"], cwd=EXAMPLE_DIR,
                capture_output=True)
    return check.returncode == 0


def _node() -> str:
    """`node`, with the example's jsonwebtoken installed (`npm ci` when missing)."""
    node = shutil.which("node") or pytest.fail(
        "Node.js is required for the Node custom-token example: `node` is not on PATH",
        pytrace=False)
    # xdist workers may get here together: one installs, the others wait.
    lock_path = os.path.join(tempfile.gettempdir(), "bridgekeeper-custom-token-example.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _jsonwebtoken_resolves(node):
            npm = shutil.which("npm") or pytest.fail("`npm` is not on PATH", pytrace=False)
            try:
                install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE_DIR,
                                         capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                         check=False)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"`npm ci` in examples/custom-token timed out:\n{exc.stderr or ''}",
                            pytrace=False)
            if install.returncode != 0 or not _jsonwebtoken_resolves(node):
                pytest.fail(f"`npm ci` in examples/custom-token failed (exit "
                            f"{install.returncode}):\n{install.stdout}\n{install.stderr}",
                            pytrace=False)
    return node


def maker_command(kind: str) -> list[str]:
    """The maker's command line, without the user arguments. Called in the test
    itself, so a missing Ruby or gem is a failed test, not a setup error."""
    if kind == "python":
        return [sys.executable, os.path.join(EXAMPLE_DIR, "make_token.py")]
    if kind == "node":
        return [_node(), os.path.join(EXAMPLE_DIR, "make-token.js")]
    return [_ruby(), os.path.join(EXAMPLE_DIR, "make_token.rb")]


def make_token(command: list[str], secret: str, args: list[str],
               user_env: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in USER_ENV}
    env.update(user_env or {}, BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=secret)
    made = run([*command, *args], cwd=EXAMPLE_DIR, env=env, capture_output=True, text=True)
    assert made.returncode == 0, f"{command[-1]} failed: {made.stderr}"
    token, newline = made.stdout.rstrip("\n"), made.stdout[-1:]
    assert newline == "\n" and "\n" not in token, f"expected one line: {made.stdout!r}"
    return token


@pytest.mark.parametrize("kind", ["python", "node", "ruby"])
def test_example_token_logs_in_once(app_settings, kind):
    maker = maker_command(kind)
    user_id = f"ext-{uuid.uuid4().hex[:12]}"
    email, username = f"{user_id}@example.com", "Zoë"
    with committed_app(app_settings, custom_token_enabled=True) as (app, secrets), \
            live_server(app_settings) as base, \
            httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as client:
        secret = secrets["custom_token"]
        token = make_token(maker, secret, [user_id, email, username])
        claims = jwt.decode(token, secret, algorithms=["HS256"])
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        assert claims["sub"] == user_id and claims["skyprofile"] == {
            "email": email, "username": username}
        assert type(claims["iat"]) is int and claims["exp"] == claims["iat"] + 3600
        assert claims["jti"]

        path = f"/v1/apps/{app.app_id}/login/custom-token"
        login = client.post(path, json={"token": token})
        assert login.status_code == 200, login.text
        assert login.headers["cache-control"] == "no-store"
        tokens = login.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["access_token"] and tokens["refresh_token"]
        assert tokens["user"]["external_id"] == user_id

        me = client.get(f"/v1/apps/{app.app_id}/me",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["external_id"] == user_id
        assert me.json()["profile"] == {"email": email, "username": username}

        replayed = client.post(path, json={"token": token})
        assert replayed.status_code == 400, replayed.text
        assert replayed.json()["error"] == "invalid_grant"
        assert replayed.json()["reason"] == "token_replayed"

        # The user given in the environment instead. Even when made in the same second
        # as the first, this token differs from it (and is accepted) thanks to its jti.
        again = make_token(maker, secret, [], {"BRIDGEKEEPER_USER_ID": user_id,
                                               "BRIDGEKEEPER_USER_EMAIL": email,
                                               "BRIDGEKEEPER_USER_USERNAME": "zoe"})
        assert again != token
        second = client.post(path, json={"token": again})
        assert second.status_code == 200, second.text
        assert second.json()["user"] == tokens["user"]
        me = client.get(f"/v1/apps/{app.app_id}/me",
                        headers={"Authorization": f"Bearer {second.json()['access_token']}"})
        assert me.json()["profile"] == {"email": email, "username": "zoe"}
