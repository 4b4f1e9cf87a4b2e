"""After a full run, no secret is anywhere in clear: not in any table, not in
the logs, not in the Celery messages.

The run goes through the real pieces: a tenant signs up on the dashboard,
creates an API key there, creates an app through the management API, reveals
and rotates secrets on the dashboard; end users log in every way (redirect,
hosted form and in-app form against the Python example endpoint, custom
token), a session is refreshed and another logged out; the API lists users and
audit and reveals secrets; a real ``celery worker -B`` (broker: a private
``redis-server``, watched with ``MONITOR``) drains every event into
PostgreSQL. Every value that must stay secret is collected on the way:
passwords, passphrases, app secrets (old and new), the API key, a TOTP seed
and its recovery codes, tenant tokens,
custom tokens, codes, PKCE verifiers, access and refresh tokens, the dashboard
session and the master key. Then every column of every table (each row as
text), the captured JSON logs of the web tier, the worker's log and every
command the broker received (task bodies base64-decoded) are searched.
Redis is searched too, except for what it must hold by design (see below).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import re
import threading
import time
import uuid
from types import SimpleNamespace

import jwt
import pytest
import redis
from sqlalchemy import text

from saas.logging import BridgekeeperJsonFormatter
from tests.conftest import MASTER_KEY
from tests.factories import DEFAULT_PASSWORD
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of, tenant_token
from tests.functional.dashboard_helpers import csrf_token
from tests.functional.test_account_factors import enrol_totp
from tests.integration.test_sync_worker import SyncEnv
from tests.live import forget_tenant, python_example, serve_wsgi
from tests.servers import private_redis

pytestmark = pytest.mark.integration


class BrokerWatch:
    """Every command the broker receives, through ``MONITOR`` in a thread."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.commands: list[str] = []
        self.monitor = self.client.monitor()
        self.monitor.__enter__()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError, ValueError, AttributeError):
            for item in self.monitor.listen():
                self.commands.append(item["command"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.monitor.connection.disconnect()
        self.thread.join(timeout=5)
        self.client.close()

    def text(self) -> str:
        """The raw commands, plus each message body base64-decoded."""
        raw = "\n".join(self.commands)
        bodies = []
        for encoded in re.findall(r'body\\?"\s*:\s*\\?"([A-Za-z0-9+/=]{8,})', raw):
            with contextlib.suppress(binascii.Error, ValueError):
                bodies.append(base64.b64decode(encoded).decode("utf-8", "replace"))
        return raw + "\n" + "\n".join(bodies)


@contextlib.contextmanager
def captured_logs():
    """The web tier's log records, formatted as in production (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(BridgekeeperJsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def table_rows(env: SyncEnv) -> str:
    with env.engine.connect() as conn:
        tables = conn.scalars(text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")).all()
        assert {"audit_events", "end_users", "app_secrets", "api_keys", "members"} <= set(tables)
        return "\n".join(
            row for table in tables
            for row in conn.scalars(text(f'SELECT t::text FROM "{table}" t')))  # noqa: S608


def redis_values(env: SyncEnv) -> str:
    """Names and values of the run's Redis keys."""
    parts = []
    for key in env.redis.scan_iter(match=f"{env.prefix}:*", count=1000):
        kind = env.redis.type(key)
        parts.append(key.decode())
        if kind == b"string":
            parts.append(env.redis.get(key).decode("utf-8", "replace"))
        elif kind == b"hash":
            parts += [f"{k.decode()}={v.decode('utf-8', 'replace')}"
                      for k, v in env.redis.hgetall(key).items()]
        elif kind == b"stream":
            parts += [repr(fields) for _id, fields in env.redis.xrange(key)]
        elif kind == b"set":
            parts += [m.decode() for m in env.redis.smembers(key)]
    return "\n".join(parts)


def exchange(web, app_id: str, code: str, verifier: str) -> dict:
    return web.post(f"/v1/apps/{app_id}/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT,
        "code_verifier": verifier}).json


def full_run(env: SyncEnv, secrets: dict[str, str], mailbox) -> None:
    """Everything a tenant and its users do; each secret seen goes into ``secrets``."""
    web = env.web()
    email = f"scan-{uuid.uuid4().hex[:8]}@example.com"
    signup = web.get("/dashboard/signup").forms[0]
    signup["tenant_name"], signup["email"], signup["password"] = "Scan Co", email, \
        DEFAULT_PASSWORD
    signup.submit(status=200)  # "check your email"
    web.get(mailbox.verification_path(email), status=200)  # the mailed link
    signin = web.get("/dashboard/signin").forms[0]
    signin["email"], signin["password"] = email, DEFAULT_PASSWORD
    signin.submit(status=303)
    secrets["password"] = DEFAULT_PASSWORD
    secrets["dashboard session"] = web.cookies["bk_session"]
    created_key = web.post("/dashboard/api-keys", {"csrf_token": csrf_token(web),
                                                   "name": "scan", "password": DEFAULT_PASSWORD})
    api_key = secrets["api key"] = created_key.html.find(id="new-key").text
    bearer = {"Authorization": f"Bearer {api_key}"}

    created = web.post_json("/v1/manage/apps", {
        "name": "Scanned", "redirect_uris": [CLIENT_REDIRECT], "backchannel": True,
        "custom_token_enabled": True, "custom_auth_endpoint": "http://127.0.0.1:9/auth",
    }, headers=bearer, status=201).json
    app_id = created["app_id"]
    secrets["custom-auth secret"] = created["secrets"]["custom_auth"]
    secrets["first custom-token secret"] = created["secrets"]["custom_token"]
    with env.engine.connect() as conn:
        env.app = SimpleNamespace(app_id=app_id, id=conn.scalar(
            text("SELECT id FROM apps WHERE app_id = :a"), {"a": app_id}))

    page = web.get(f"/dashboard/apps/{app_id}/secrets").forms[1]
    page["password"] = DEFAULT_PASSWORD
    revealed = page.submit()
    assert revealed.html.find(id="secret-custom-auth").text == secrets["custom-auth secret"]
    rotated = web.post(f"/dashboard/apps/{app_id}/secrets/custom_token/rotate", {
        "csrf_token": csrf_token(web), "password": DEFAULT_PASSWORD, "grace_hours": "24"})
    custom_secret = secrets["custom-token secret"] = rotated.html.find(id="new-secret").text
    assert web.get(f"/v1/manage/apps/{app_id}/secrets", headers=bearer).json[
        "custom_token"]["current"] == custom_secret

    auth_secret = secrets["custom-auth secret"]
    with serve_wsgi(python_example(auth_secret)) as tenant:
        web.patch_json(f"/v1/manage/apps/{app_id}", {"custom_auth_endpoint": tenant + "/auth"},
                       headers=bearer)
        sessions = []
        # Redirect login.
        login = Login(web, app_id, auth_secret)
        token = secrets["tenant token"] = tenant_token(auth_secret, state=login.state,
                                                       user_id="ann", custom={"plan": "pro"})
        code = secrets["code"] = query_of(web.get(f"/v1/apps/{app_id}/callback", {
            "state": login.state, "token": token}).location)["code"]
        secrets["pkce verifier"] = login.verifier
        sessions.append(login.exchange(code).json)
        # Hosted form.
        verifier, challenge = pkce_pair()
        form = web.get(f"/v1/apps/{app_id}/login", {"redirect_uri": CLIENT_REDIRECT,
                                                    "code_challenge": challenge}).forms[0]
        form["id"], form["passphrase"] = "alice", "wonderland"
        hosted_code = secrets["hosted code"] = query_of(form.submit(status=303).location)["code"]
        sessions.append(exchange(web, app_id, hosted_code, verifier))
        secrets["hosted verifier"], secrets["passphrase"] = verifier, "wonderland"
        # In-app form.
        sessions.append(web.post_json(f"/v1/apps/{app_id}/login/custom",
                                      {"data": {"id": "bob", "passphrase": "builder"}}).json)
        secrets["in-app passphrase"] = "builder"
    # Custom token.
    now = int(time.time())
    custom = secrets["custom token"] = jwt.encode(
        {"sub": "cy", "iat": now, "exp": now + 300, "skyprofile": {"name": "Cy"}},
        custom_secret, algorithm="HS256")
    sessions.append(web.post_json(f"/v1/apps/{app_id}/login/custom-token",
                                  {"token": custom}).json)
    # Refresh one session, read /me, log another out.
    refreshed = web.post(f"/v1/apps/{app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": sessions[0]["refresh_token"]}).json
    sessions.append(refreshed)
    for number, tokens in enumerate(sessions):
        secrets[f"access token {number}"] = tokens["access_token"]
        secrets[f"refresh token {number}"] = tokens["refresh_token"]
    me = web.get(f"/v1/apps/{app_id}/me",
                 headers={"Authorization": "Bearer " + refreshed["access_token"]}).json
    assert me["custom"] == {"plan": "pro"}
    web.post(f"/v1/apps/{app_id}/logout", {"refresh_token": sessions[1]["refresh_token"]},
             status=204)
    # The API and the dashboard read what the logins left.
    assert web.get(f"/v1/manage/apps/{app_id}/audit", headers=bearer).json["events"]
    web.get(f"/dashboard/apps/{app_id}/users")
    # Last (it asks for a code from then on): a second factor, its seed and recovery codes.
    seed, codes = enrol_totp(web)
    secrets["totp seed"] = seed
    for number, recovery in enumerate(codes):
        secrets[f"recovery code {number}"] = recovery
    secrets["master key"] = MASTER_KEY


def test_a_full_run_leaves_no_secret_in_clear(app_settings, redis_client, tmp_path, mailbox):
    with private_redis(tmp_path) as broker:
        settings = {**app_settings, "celery.broker_url": broker.url}
        placeholder = SimpleNamespace(app_id="none0000", id=uuid.uuid4())
        env = SyncEnv(settings, tmp_path, placeholder, {"custom_auth": ""})
        watch = BrokerWatch(broker.url)
        secrets: dict[str, str] = {}
        try:
            with captured_logs() as logs:
                full_run(env, secrets, mailbox)
                worker = env.start_worker()
                env.wait_for(lambda: env.audit_total()[0] >= 16 and env.synced(
                    env.audit_total()[0]), "every event synced")
                env.wait_for(lambda: "workers.sync.drain" in watch.text(),
                             "a drain task seen on the broker")
                env.stop_workers()
            watch.close()
            assert len(secrets) >= 20

            corpora = {
                "tables": table_rows(env),
                "web logs": logs.getvalue(),
                "worker log": worker.log(),
                "broker": watch.text(),
            }
            assert "login.succeeded" in corpora["tables"]
            assert "request" in corpora["web logs"] and "drained" in corpora["worker log"]
            found = [f"{name} in {where}" for name, value in secrets.items()
                     for where, corpus in corpora.items() if value in corpus]
            assert found == []

            # Redis keys dashboard sessions by the id's hash: no secret is there,
            # not even the session cookie.
            in_redis = redis_values(env)
            assert [name for name, value in secrets.items() if value in in_redis] == []
        finally:
            watch.close()
            with env.engine.begin() as conn:
                tenant = conn.scalar(text("SELECT tenant_id FROM apps WHERE app_id = :a"),
                                     {"a": env.app.app_id})
                if tenant is not None:
                    forget_tenant(conn, tenant)
            env.close()
