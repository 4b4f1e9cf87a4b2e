"""Nothing persisted on bad input: a Hypothesis sweep over the refusals of the
login endpoints and the management API, on real PostgreSQL and Redis.

Before and after each refused request the test compares every table's row
count and the set of Redis keys under the run's prefix. A refusal may leave
only rate-limit counters and, as DESIGN §4.2 asks ("every outcome is an audit
event"), one *failure* audit record in the event stream — never a user
upsert, a success, a state, code, session, refresh token, replay marker or
overlay. Exception, by contract: a callback whose state is valid consumes that
state ("exactly one request can ever use a state, whatever the outcome"),
which leaves its used-marker and nothing else.

Each example comes from its own client address, so the per-IP rate limit
does not end the sweep early (a 429 would be a refusal too, and is checked
the same way).
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import quote_from_bytes, urlencode

import pytest
import webtest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.factories import make_api_key
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, tenant_token
from tests.functional.dashboard_helpers import SNAPSHOT_TABLES
from tests.store_state import (
    expired_by_now,
    expiry_deadlines,
    lasting_keys,
    stream_events,
    upserts,
)

SWEEP = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.filter_too_much])
NASTY = st.sampled_from(["", " ", "x", "A" * 600, "\x00", "a\r\nb", "é", "%00", "{}", "[]",
                         "null", "ey.J.x", "aaaa1111.state", "../../", "<script>", "0" * 9000])
SMALL_TEXT = st.text(max_size=20) | NASTY
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | SMALL_TEXT,
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(SMALL_TEXT, inner, max_size=3), max_leaves=6)
IPS = st.integers(1, 2**32 - 2).map(lambda n: str(ipaddress.IPv4Address(n)))


class World:
    def __init__(self, webapp, db, registry, app, api_key: str) -> None:
        self.webapp, self.db, self.app, self.api_key = webapp, db, app, api_key
        self.redis = registry["saas.redis"]
        self.prefix = registry.settings["saas.redis_prefix"]
        self.streams = registry["saas.event_streams"]

    def counts(self) -> dict[str, int]:
        return {table: self.db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                for table in SNAPSHOT_TABLES}

    def snapshot(self) -> tuple:
        keys = lasting_keys(self.redis, self.prefix)
        return (self.counts(), keys, len(stream_events(self.redis, self.streams)),
                expiry_deadlines(self.redis, keys))

    def check_refused(self, before: tuple, response, *, audited: bool = True,
                      consumed_state: str | None = None, also_ok: tuple = ()) -> None:
        assert response.status_int != 500 and (
            response.status_int >= 300 or response.status_int in also_ok), (
            response.status, response.text[:300])
        event(f"status {response.status_int}")
        if response.status_int in (302, 303):  # an error sent back to the client
            assert response.location.startswith(tuple(self.app.redirect_uris))
            assert "error=" in response.location and "code=" not in response.location
        counts, keys, _count, _deadlines = self.snapshot()
        assert counts == before[0]
        # Keys left by earlier tests on this worker (a 60 s code, a replay
        # marker) may reach their TTL during the sweep on a busy machine: only
        # a key gone before its own expiry counts as removed.
        added = keys - before[1]
        removed = {key for key in before[1] - keys if not expired_by_now(before[3], key)}
        if consumed_state:
            state_key = f"{self.prefix}:{{{self.app.app_id}}}:state:{consumed_state}"
            assert removed == {state_key}
            assert added == {state_key.replace(":state:", ":state-used:")}
        else:
            assert (added, removed) == (set(), set())
        new = stream_events(self.redis, self.streams)[before[2]:]
        assert upserts(new) == []
        assert len(new) <= (1 if audited else 0)
        for record in (r for entry in new for r in entry["audit"]):
            assert record["outcome"] == "failure" and record["type"].endswith(".failed")


@pytest.fixture
def world(webapp, db, registry, login_app):
    login_app.custom_auth_endpoint = "http://127.0.0.1:1/auth"  # refuses at once
    login_app.backchannel = True
    login_app.custom_token_enabled = True
    _key, plaintext = make_api_key(db, login_app.tenant_id, "sweep")
    db.commit()
    registry["saas.app_cache"].store(login_app)
    return World(webapp, db, registry, login_app, plaintext)


def _env(ip: str) -> dict[str, str]:
    return {"REMOTE_ADDR": ip, "HTTP_ACCEPT": "application/json"}


AUTHORIZE = st.fixed_dictionaries({}, optional={
    "redirect_uri": st.sampled_from([CLIENT_REDIRECT, CLIENT_REDIRECT + "/", "//evil.example",
                                     CLIENT_REDIRECT.upper(), "myapp://cb"]) | SMALL_TEXT,
    "code_challenge": st.sampled_from([pkce_pair()[1], "short", "!" * 43]) | SMALL_TEXT,
    "code_challenge_method": st.sampled_from(["S256", "plain", "s256"]) | SMALL_TEXT,
    "state": st.sampled_from(["ok", "s" * 513]) | SMALL_TEXT,
    "data": st.sampled_from(['{"a":1}', "[1]", "{", '{"a":' * 3000, '"x"'])
    | JSONISH.map(json.dumps),
})


@SWEEP
@given(AUTHORIZE, IPS, st.booleans())
def test_refused_authorize_and_hosted_form_persist_nothing(world, params, ip, hosted):
    before = world.snapshot()
    path = f"/v1/apps/{world.app.app_id}/" + ("login" if hosted else "authorize")
    response = world.webapp.get(path, params, extra_environ=_env(ip), status="*")
    # The rare example that is entirely valid starts a login: not this test's subject.
    assume(response.status_int >= 400 or "error=" in response.headers.get("Location", ""))
    world.check_refused(before, response)


CALLBACK = st.fixed_dictionaries({}, optional={
    "state": st.sampled_from(["", "zzzz9999.abc", "abcd1234.unknown"]) | SMALL_TEXT,
    "token": SMALL_TEXT, "error": st.sampled_from(["access_denied", "x"]) | SMALL_TEXT,
    "error_description": SMALL_TEXT, "flow": SMALL_TEXT,
})


@SWEEP
@given(CALLBACK, IPS)
def test_refused_callbacks_without_a_live_state_persist_nothing(world, params, ip):
    before = world.snapshot()
    response = world.webapp.get(f"/v1/apps/{world.app.app_id}/callback", params,
                                extra_environ=_env(ip), status="*")
    world.check_refused(before, response)


@SWEEP
@given(SMALL_TEXT | st.sampled_from(["exp", "alg", "sig", "user", "replay"]), IPS)
def test_a_refused_tenant_token_consumes_its_state_and_nothing_else(world, bad, ip):
    secret = world.app.plain_secrets["custom_auth"]
    world.webapp.extra_environ["REMOTE_ADDR"] = ip  # the login's start too
    login = Login(world.webapp, world.app.app_id, secret)
    token = {"exp": lambda: tenant_token(secret, state=login.state, exp=1),
             "alg": lambda: tenant_token(secret, state=login.state).replace("J9", "J8", 1),
             "sig": lambda: tenant_token(secret + "x", state=login.state),
             "user": lambda: tenant_token(secret, state=login.state, user_id="\x00"),
             }.get(bad, lambda: bad)()
    before = world.snapshot()
    response = world.webapp.get(f"/v1/apps/{world.app.app_id}/callback",
                                {"state": login.state, "token": token},
                                extra_environ=_env(ip), status="*")
    if response.status_int == 413:  # an oversized token is refused before the state is used
        world.check_refused(before, response)
        return
    assert response.status_int == 302
    world.check_refused(before, response, consumed_state=login.state)


TOKEN_FORMS = st.fixed_dictionaries({}, optional={
    "grant_type": st.sampled_from(["authorization_code", "refresh_token", "password"])
    | SMALL_TEXT,
    "code": SMALL_TEXT, "redirect_uri": st.just(CLIENT_REDIRECT) | SMALL_TEXT,
    "code_verifier": st.just(pkce_pair()[0]) | SMALL_TEXT, "refresh_token": SMALL_TEXT,
    "token": SMALL_TEXT, "data": JSONISH,
})
POSTS = st.sampled_from(["token", "login/custom-token", "login/custom", "login", "logout"])


@SWEEP
@given(POSTS, TOKEN_FORMS, st.sampled_from(["form", "json", "raw"]), SMALL_TEXT, IPS)
def test_refused_posts_persist_nothing(world, endpoint, fields, encoding, raw, ip):
    path = f"/v1/apps/{world.app.app_id}/{endpoint}"
    if endpoint == "login/custom":
        fields = {"data": fields.get("data", fields)}  # any data: the tenant refuses it
    before = world.snapshot()
    env = _env(ip)
    if encoding == "json":
        response = world.webapp.post_json(path, fields, extra_environ=env, status="*")
    elif encoding == "form":
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        response = world.webapp.post(path, flat, extra_environ=env, status="*")
    else:
        response = world.webapp.post(path, raw.encode("utf-8", "surrogatepass"),
                                     content_type="application/json", extra_environ=env,
                                     status="*")
    if endpoint == "logout":  # a logout of nothing (204) changes nothing, audits nothing
        world.check_refused(before, response, audited=False, also_ok=(204,))
        return
    world.check_refused(before, response)


MANAGE_BODIES = st.one_of(
    st.dictionaries(st.sampled_from(["name", "redirect_uris", "custom_auth_endpoint",
                                     "access_token_ttl", "refresh_token_ttl", "hosted_form",
                                     "backchannel", "bogus", "app_id"]), JSONISH, max_size=4),
    JSONISH)


@SWEEP
@given(st.sampled_from(["POST /v1/manage/apps", "PATCH /v1/manage/apps/{app}",
                        "POST /v1/manage/apps/{app}/secrets/custom_auth/rotate",
                        "POST /v1/manage/apps/{app}/secrets/bogus/rotate",
                        "GET /v1/manage/apps/{app}/users", "GET /v1/manage/apps/{app}/audit"]),
       MANAGE_BODIES, st.booleans(), st.sampled_from(["0", "-1", "x", "10001", ""]), IPS)
def test_refused_management_requests_persist_nothing(world, route, body, keyed, limit, ip):
    method, path = route.split(" ")
    path = path.format(app=world.app.app_id)
    headers = {"Authorization": "Bearer " + (world.api_key if keyed else "bk_" + "x" * 40)}
    before = world.snapshot()
    if method == "GET":
        params = {"limit": limit, "cursor": json.dumps(body), "since": json.dumps(body)}
        response = world.webapp.get(path, params, headers=headers, extra_environ=_env(ip),
                                    status="*")
    else:
        response = getattr(world.webapp, method.lower() + "_json")(
            path, body, headers=headers, extra_environ=_env(ip), status="*")
    # A generated body the API can accept is not this test's subject.
    assume(response.status_int >= 400)
    assert response.status_int in (400, 401, 404, 413, 422), (response.status,
                                                               response.text[:300])
    world.check_refused(before, response, audited=False)


# Bytes that are not UTF-8 (text around an invalid sequence), and where they go.
NOT_UTF8 = st.tuples(
    st.text(max_size=3),
    st.sampled_from([b"\xff", b"\xfe\xff", b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xe2\x82",
                     b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]),
    st.text(max_size=3)).map(lambda t: t[0].encode() + t[1] + t[2].encode())
LONE_SURROGATE = st.integers(0xD800, 0xDFFF).map(lambda cp: f'"\\u{cp:04x}"'.encode())
TEXT_ENDPOINTS = [
    ("GET", "authorize"), ("GET", "login"), ("GET", "callback"), ("GET", "me"),
    ("POST", "login"), ("POST", "token"), ("POST", "login/custom-token"),
    ("POST", "login/custom"), ("POST", "logout"), ("GET", "manage/users"),
    ("PATCH", "manage/app"), ("POST", "manage/rotate")]
PLACES = ["query", "raw query", "path", "form", "raw form", "json", "Authorization", "Cookie",
          "X-Requested-With"]


def _not_text_request(world, method: str, endpoint: str, place: str, bad: bytes,
                      surrogate: bytes, ip: str) -> webtest.TestRequest:
    app_id = world.app.app_id
    manage = endpoint.startswith("manage/")
    segment = quote_from_bytes(bad, safe="") if place == "path" else app_id
    path = {"manage/users": f"/v1/manage/apps/{segment}/users",
            "manage/app": f"/v1/manage/apps/{segment}",
            "manage/rotate": f"/v1/manage/apps/{segment}/secrets/custom_auth/rotate",
            }.get(endpoint, f"/v1/apps/{segment}/{endpoint}")
    query = {"redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1], "state": "s",
             "flow": "custom", "token": "t"}
    query_string = urlencode(query)
    if place == "query":
        query_string += "&state=" + quote_from_bytes(bad, safe="")
    elif place == "raw query" or (method == "GET" and place in ("form", "raw form", "json")):
        query_string += "&code_challenge=" + bad.decode("latin-1")
    environ = dict(world.webapp.extra_environ, REMOTE_ADDR=ip, HTTP_ACCEPT="application/json",
                   QUERY_STRING=query_string)
    if manage:
        environ["HTTP_AUTHORIZATION"] = "Bearer " + world.api_key
    if place in ("Authorization", "Cookie", "X-Requested-With"):
        prefix = {"Authorization": "Bearer ", "Cookie": "bk_session="}.get(place, "")
        environ["HTTP_" + place.upper().replace("-", "_")] = prefix + bad.decode("latin-1")
    request = webtest.TestRequest.blank(path, method=method, environ=environ)
    if method != "GET":
        # The hosted form reads a form body only; the management API, JSON only.
        if (place == "json" and endpoint != "login") or (
                manage and place not in ("form", "raw form")):
            request.content_type = "application/json"
            request.body = b'{"token": ' + surrogate + b', "data": {"id": ' + surrogate + b"}}"
        else:
            request.content_type = "application/x-www-form-urlencoded"
            value = bad if place == "raw form" else quote_from_bytes(bad, safe="").encode()
            request.body = b"grant_type=refresh_token&refresh_token=" + value
    return request


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize(("method", "name"), TEXT_ENDPOINTS)
@settings(SWEEP, max_examples=5)
@given(NOT_UTF8, LONE_SURROGATE, IPS)
def test_requests_that_are_not_utf8_are_400_and_persist_nothing(world, method, name, place, bad,
                                                                surrogate, ip):
    request = _not_text_request(world, method, name, place, bad, surrogate, ip)
    before = world.snapshot()
    response = world.webapp.do_request(request, status="*")
    # Authorize and the hosted form send an error in their parameters to the
    # valid redirect_uri; a path or a header that is not text is a 400 page.
    redirected = method == "GET" and name in ("authorize", "login") and place in (
        "query", "raw query", "form", "raw form", "json")
    assert response.status_int == (302 if redirected else 400), (
        place, name, response.status, response.text[:300])
    if response.status_int == 400 and response.content_type == "application/json":
        assert response.json["error"] == "invalid_request"
        assert response.json["reason"] in ("claims_invalid", "invalid_parameter",
                                           "invalid_body")
    world.check_refused(before, response, audited=not name.startswith("manage/"))
