"""Header and log injection: CR/LF and control characters in anything a client
sends never reach a response header and never split a log line.

Every request below carries the payloads in its headers (``X-Request-ID``,
``User-Agent``), in query parameters the service echoes (``redirect_uri``,
``state``, ``login_hint``, ``error_description``, ``data``), in form fields
and in JSON bodies. For each answer: no 5xx, every header name and value free
of control characters, no header a payload tried to add, and a refusal
carries its contract reason. The logs of the whole sweep, formatted with the
service's JSON formatter, are one JSON object per line. Control characters
in audit fields (the user agent) never stop the sync either.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from saas.errors import Reason
from saas.logging import BridgekeeperJsonFormatter
from saas.sync.drain import drain
from tests.factories import make_member
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of, tenant_token
from tests.sync_helpers import app_stream

PAYLOADS = [
    "a\r\nX-Injected: 1",
    "b\nSet-Cookie: evil=1",
    "c\rLocation: https://evil.example/",
    "d\x00e",
    "f\x1b[31mred\x07",
    "g\u2028h\u2029i\x85j",
    "%0d%0aX-Injected:%201",
]
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# The contract's reasons, and the management API's own (saas/manage/errors.py).
REASONS = {reason.value for reason in Reason} | {
    "invalid_api_key", "invalid_body", "invalid_cursor", "invalid_parameter", "invalid_value",
    "unknown_fields", "forbidden"}
UPSTREAM = {"tenant_error", "tenant_unreachable"}  # 502/504: the tenant's fault, not ours


def check_answer(response) -> None:
    assert response.status_int < 500 or (
        response.status_int in (502, 504) and response.json["reason"] in UPSTREAM), (
        response.status, response.text[:300])
    for name, value in response.headerlist:
        assert not CONTROL.search(name) and not CONTROL.search(value), (name, value)
        assert name.lower() != "x-injected"
        assert not (name.lower() == "set-cookie" and "evil" in value), value
    location = response.headers.get("Location", "")
    assert not location.startswith("https://evil.example")
    if response.content_type == "application/json" and response.status_int >= 400:
        assert response.json["reason"] in REASONS
        assert response.json["request_id"] == response.headers["X-Request-ID"]


@pytest.fixture
def json_logs(caplog):
    """The sweep's log records as the service writes them: returns the lines."""
    formatter = BridgekeeperJsonFormatter()
    caplog.set_level(logging.INFO)

    def lines() -> list[str]:
        text_ = "\n".join(formatter.format(record) for record in caplog.records)
        found = text_.split("\n") if text_ else []
        assert len(found) == len(caplog.records)  # no record spans two lines
        return found

    return lines


@pytest.fixture
def open_app(login_app, db, registry):
    """The login app with every way in switched on; its endpoint is a closed
    loopback port, so back-channel calls fail at once (502/504)."""
    login_app.custom_auth_endpoint = "http://127.0.0.1:1/auth"
    login_app.backchannel = True
    login_app.custom_token_enabled = True
    db.commit()
    registry["saas.app_cache"].store(login_app)
    return login_app


def _headers(payload: str) -> dict[str, str]:
    return {"X-Request-ID": "rid-" + payload, "User-Agent": "agent/" + payload,
            "Accept": "application/json"}


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_login_endpoints_never_echo_control_characters(webapp, open_app, json_logs, payload):
    app_id, secret = open_app.app_id, open_app.plain_secrets["custom_auth"]
    base = f"/v1/apps/{app_id}"
    challenge = pkce_pair()[1]
    headers = _headers(payload)
    get = lambda path, params: webapp.get(path, params, headers=headers, status="*")  # noqa: E731

    # redirect_uri is never reflected: a 400 page, whatever it holds.
    refused = get(base + "/authorize", {"redirect_uri": CLIENT_REDIRECT + payload,
                                        "code_challenge": challenge})
    check_answer(refused)
    assert refused.status_int == 400 and refused.json["reason"] == "redirect_uri_not_allowed"

    # state, login_hint and data are echoed or forwarded only percent-encoded.
    started = get(base + "/authorize", {"redirect_uri": CLIENT_REDIRECT,
                                        "code_challenge": challenge, "state": payload,
                                        "login_hint": payload,
                                        "data": json.dumps({"hint": payload})})
    check_answer(started)
    assert started.status_int == 302
    hosted = webapp.get(base + "/login", {"redirect_uri": CLIENT_REDIRECT,
                                          "code_challenge": challenge, "state": payload,
                                          "login_hint": payload},
                        headers=dict(headers, Accept="text/html"), status="*")
    check_answer(hosted)
    assert hosted.status_int == 200 and "\r" not in hosted.text.split("<form")[0]
    for answer in (get(base + "/callback", {"state": payload, "token": payload}),
                   get(base + "/callback", {"state": payload, "error": "access_denied",
                                            "error_description": payload})):
        check_answer(answer)

    # A tenant's refusal with a hostile description comes back to the client
    # in the Location only as cleaned, percent-encoded text.
    login = Login(webapp, app_id, secret, state=payload)
    denied = get(base + "/callback", {"state": login.state, "error": "access_denied",
                                      "error_description": payload})
    check_answer(denied)
    back = dict(parse_qsl(urlsplit(denied.location).query))
    assert back["state"] == payload  # the client's own state, intact
    assert not CONTROL.search(back["error_description"])

    # Form fields and JSON bodies of every POST endpoint.
    for path, body in ((base + "/token", {"grant_type": "authorization_code", "code": payload,
                                          "redirect_uri": payload, "code_verifier": payload}),
                       (base + "/token", {"grant_type": payload, "refresh_token": payload}),
                       (base + "/logout", {"refresh_token": payload})):
        check_answer(webapp.post(path, body, headers=headers, status="*"))
        check_answer(webapp.post_json(path, body, headers=headers, status="*"))
    for path, body in ((base + "/login/custom-token", {"token": payload, payload: payload}),
                       (base + "/login/custom", {"data": {"id": payload, payload: payload}})):
        check_answer(webapp.post_json(path, body, headers=headers, status="*"))
    form = webapp.post(base + "/login", {"state": payload, "id": payload, "passphrase": payload},
                       headers=headers, status="*")
    check_answer(form)
    check_answer(webapp.get(f"/v1/apps/{app_id}/me",
                            headers=dict(headers, Authorization="Bearer " + payload),
                            status="*"))

    entries = [json.loads(line) for line in json_logs()]
    assert sum(e.get("message") == "request" for e in entries) >= 15  # one per request


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_dashboard_and_management_api_never_echo_control_characters(
        webapp, db, passwords, json_logs, payload):
    member = make_member(db, passwords)
    db.commit()
    headers = _headers(payload)
    check_answer(webapp.post("/dashboard/signin", {"email": member.email + payload,
                                                   "password": payload},
                             headers=dict(headers, Accept="text/html"), status="*"))
    check_answer(webapp.post("/dashboard/signup", {"email": payload, "password": payload,
                                                   "tenant_name": payload},
                             headers=dict(headers, Accept="text/html"), status="*"))
    check_answer(webapp.get("/dashboard/apps", {"next": payload},
                            headers=dict(headers, Accept="text/html"), status="*"))
    for auth in ("Bearer " + payload, payload):
        check_answer(webapp.get("/v1/manage/apps", headers=dict(headers, Authorization=auth),
                                status="*"))
        check_answer(webapp.post_json("/v1/manage/apps", {"name": payload},
                                      headers=dict(headers, Authorization=auth), status="*"))
    check_answer(webapp.get("/no/such/" + quote(payload), headers=headers, status="*"))
    entries = [json.loads(line) for line in json_logs()]
    # The access log records the path still percent-encoded: no raw control character.
    [path] = [e["path"] for e in entries if e.get("path", "").startswith("/no/such/")]
    assert not CONTROL.search(path) and len(path) > len("/no/such/")


def test_request_ids_with_control_characters_are_replaced(webapp):
    for payload in PAYLOADS:
        response = webapp.get("/healthz", headers={"X-Request-ID": "abcdefgh" + payload})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_control_characters_in_audit_fields_never_stop_the_sync(
        webapp, login_app, registry, db_connection):
    """A user agent full of control characters (NUL included, which
    PostgreSQL's text refuses) is stored cleaned; no event is dead-lettered."""
    stream = app_stream(registry, login_app.app_id, f"inj-{uuid.uuid4().hex[:6]}", fresh=True)
    agent = "agent/" + "".join(PAYLOADS)
    secret = login_app.plain_secrets["custom_auth"]
    webapp.extra_environ["HTTP_USER_AGENT"] = agent
    try:
        login = Login(webapp, login_app.app_id, secret)
        done = webapp.get(f"/v1/apps/{login_app.app_id}/callback",
                          {"state": login.state, "token": tenant_token(secret, state=login.state)})
        assert "code" in query_of(done.location)
    finally:
        del webapp.extra_environ["HTTP_USER_AGENT"]

    factory = sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                           expire_on_commit=False)
    result = drain(stream, factory)
    assert result.dead_lettered == 0 and stream.status()["dead_letters"] == 0
    agents = db_connection.execute(text(
        "SELECT user_agent FROM audit_events WHERE app_id = :a AND type <> 'user.created'"),
        {"a": login_app.app_id}
    ).scalars().all()
    assert len(agents) == 2 and all(a and a.startswith("agent/") for a in agents)
    assert not any(CONTROL.search(a) for a in agents)
