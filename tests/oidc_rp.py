"""What the relying-party tests share (real OIDC client libraries against a
live Bridgekeeper): an app whose tenant endpoint is the Python example, and a
user agent that signs in through it the way a browser would.

The libraries' Node packages live in tests/oidc_clients (``make test`` runs
``npm ci`` there).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.live import (
    committed_app,
    live_server,
    point_app_at,
    python_example,
    serve_wsgi,
    sign_in_at_tenant,
)
from tests.waiting import REQUEST_SECONDS, processes, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS_DIR = os.path.join(ROOT, "tests", "oidc_clients")

# What the tenant says about alice beyond the example's own claims, so the
# profile and email scopes have something to carry.
ALICE_PROFILE = {
    "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
    "preferred_username": "alice", "locale": "en-GB",
    "email": "alice@example.com", "email_verified": True,
}
ALICE_ID = "1001"  # the example's user id for alice
ALICE = ("alice", "wonderland")  # her user name and passphrase at the example


def tenant_endpoint(secret: str, profiles: dict[str, dict]):
    """The Python example tenant endpoint, unchanged in what the user sees,
    whose signed answer also carries a ``profile`` for the users named in
    ``profiles`` (keyed by the example's user id): the token is re-signed with
    the same secret, as a tenant that sends profiles would sign it."""
    example = python_example(secret)

    def app(environ, start_response):
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(example(environ, capture))
        headers = [(name, _with_profile(value, secret, profiles) if name == "Location" else value)
                   for name, value in captured["headers"]]
        start_response(captured["status"], headers)
        return [body]

    return app


def _with_profile(location: str, secret: str, profiles: dict[str, dict]) -> str:
    base, _, query = location.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    tokens = [value for key, value in params if key == "token"]
    if not tokens:
        return location
    claims = jwt.decode(tokens[0], secret, algorithms=["HS256"])
    profile = profiles.get(str(claims["user_id"]))
    if profile is None:
        return location
    signed = jwt.encode({**claims, "profile": profile}, secret, algorithm="HS256")
    return base + "?" + urlencode([(key, signed if key == "token" else value)
                                   for key, value in params])


@dataclass
class OidcApp:
    app: object
    secrets: dict
    base: str  # the live server
    tenant: str  # the tenant endpoint's base URL

    @property
    def client_id(self) -> str:
        return self.app.app_id

    @property
    def issuer(self) -> str:
        return f"{self.base}/v1/apps/{self.app.app_id}"


@contextlib.contextmanager
def oidc_app(settings: dict, client_origin: str, **fields) -> Iterator[OidcApp]:
    """A committed app at a live server, signing users in at the Python example;
    its redirect URI is ``{client_origin}/callback`` and its one post-logout
    redirect URI ``{client_origin}/signed-out``."""
    fields.setdefault("redirect_uris", [client_origin + "/callback"])
    fields.setdefault("post_logout_redirect_uris", [client_origin + "/signed-out"])
    with committed_app(settings, **fields) as (app, secrets), \
            serve_wsgi(tenant_endpoint(secrets["custom_auth"], {ALICE_ID: ALICE_PROFILE})) \
            as tenant, live_server(settings) as base:
        point_app_at(settings, app, tenant + "/auth")
        yield OidcApp(app, secrets, base, tenant)


def sign_in(agent: httpx.Client, url: str, tenant: str, *,
            credentials: tuple[str, str] = ALICE, stop_at: str | None = None):
    """Follow redirects from ``url`` as a browser would, signing in on the
    tenant's page when it comes. Returns the first answer that is not a
    redirect, or — with ``stop_at`` — the first redirect target starting with
    it (a client that is not a web server here, such as Authlib in this
    process, reads its callback URL from there)."""
    for _hop in range(10):
        if stop_at is not None and url.startswith(stop_at):
            return url
        if url.startswith(tenant + "/"):
            answer = sign_in_at_tenant(url, *credentials)
        else:
            answer = agent.get(url)
        if answer.status_code not in (301, 302, 303, 307, 308):
            return answer
        url = answer.headers["Location"]
    raise AssertionError(f"more than 10 redirects, the last to {url}")


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def page_text(answer: httpx.Response) -> str:
    """An HTML page's visible words, roughly: enough to assert on."""
    return html.unescape(re.sub(r"<[^>]+>", " ", answer.text))


def node_binary() -> str:
    """`node`, with tests/oidc_clients' packages installed (``make test`` ran
    ``npm ci`` there); fails loudly otherwise."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js 20+ is required for the relying-party tests: `node` is not on PATH",
                    pytrace=False)
    for package in ("openid-client", "oidc-client-ts"):
        if not os.path.isdir(os.path.join(CLIENTS_DIR, "node_modules", package)):
            pytest.fail(f"{package} is not installed: run `npm ci --prefix tests/oidc_clients` "
                        "(make test does)", pytrace=False)
    return node


@contextlib.contextmanager
def node_server(script: str, env: dict[str, str]) -> Iterator[str]:
    """Start ``node script`` in tests/oidc_clients; yield the base URL from its
    first line ("listening on http://127.0.0.1:PORT"); stop it after."""
    process = subprocess.Popen([node_binary(), script], cwd=CLIENTS_DIR,
                               env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    try:
        wait_until(lambda: not reader.is_alive() or process.poll() is not None,
                   f"{script}'s first line", progress=processes(process))
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", lines[0] if lines
                             else "")
        if not match:
            process.kill()
            _, err = process.communicate(timeout=REQUEST_SECONDS)
            pytest.fail(f"{script} did not start: {lines!r}\n{err}", pytrace=False)
        yield match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=REQUEST_SECONDS)
