"""Redirect custom auth (DESIGN §4, §6) through the web app, reason by reason."""

from __future__ import annotations

import json
import logging
import time

import jwt
import pytest

from saas.jwt.hs256 import REQUEST_TOKEN_TYP
from tests.factories import make_app
from tests.flows import (
    CLIENT_REDIRECT,
    Login,
    authorize,
    callback,
    pkce_pair,
    query_of,
    tenant_token,
)


def start(webapp, app, **kw) -> Login:
    return Login(webapp, app.app_id, app.plain_secrets["custom_auth"], **kw)


def test_authorize_redirects_to_the_tenant_with_a_signed_request_token(webapp, login_app):
    login = start(webapp, login_app, data=json.dumps({"lang": "fr"}))
    assert login.tenant_url.startswith("https://tenant.example.com/auth?v=1&")
    params = login.tenant_params
    assert params["redirect_uri"] == f"http://bk.test/v1/apps/{login_app.app_id}/callback?flow=custom"
    header = jwt.get_unverified_header(params["token"])
    assert header["typ"] == REQUEST_TOKEN_TYP and header["alg"] == "HS256"
    claims = jwt.decode(params["token"], login_app.plain_secrets["custom_auth"],
                        algorithms=["HS256"])
    assert set(claims) == {"app_id", "iat", "exp", "jti", "data"}
    assert claims["exp"] - claims["iat"] == 300 and claims["data"] == {"lang": "fr"}
    assert len(login.state) >= 32  # ≥ 128 bits of randomness after the app prefix


def test_binding_cookie_is_httponly_lax_and_scoped_to_the_callback(webapp, login_app):
    response = authorize(webapp, login_app.app_id)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Path=/v1/apps/{login_app.app_id}/callback" in cookie
    assert response.headers["Cache-Control"] == "no-store"


def test_full_login_code_exchange_and_me(webapp, login_app):
    login = start(webapp, login_app)
    done = login.finish(user_id=1234, custom={"plan": "pro", "lang": "en"})
    assert done.location.startswith(CLIENT_REDIRECT + "?")
    back = query_of(done.location)
    assert back["state"] == "client-state" and len(back["code"]) >= 43
    tokens = login.exchange(back["code"]).json
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert tokens["user"]["external_id"] == "1234"

    me = webapp.get(f"/v1/apps/{login_app.app_id}/me",
                    headers={"Authorization": "Bearer " + tokens["access_token"]}).json
    assert me["custom"] == {"plan": "pro", "lang": "en"} and me["external_id"] == "1234"
    assert me["id"] == tokens["user"]["id"] and me["app_id"] == login_app.app_id

    second = start(webapp, login_app)
    tokens2 = second.tokens(user_id=1234, custom={"lang": "de", "theme": "dark"})
    me2 = webapp.get(f"/v1/apps/{login_app.app_id}/me",
                     headers={"Authorization": "Bearer " + tokens2["access_token"]}).json
    assert me2["custom"] == {"plan": "pro", "lang": "de", "theme": "dark"}


def test_access_token_verifies_against_the_jwks(webapp, login_app):
    tokens = start(webapp, login_app).tokens(user_id="u-7")
    keys = webapp.get(f"/v1/apps/{login_app.app_id}/.well-known/jwks.json").json["keys"]
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    jwk = next(k for k in keys if k["kid"] == kid)
    assert "d" not in jwk
    claims = jwt.decode(
        tokens["access_token"], jwt.PyJWK(jwk).key, algorithms=["ES256"],
        audience=login_app.app_id, issuer=f"http://bk.test/v1/apps/{login_app.app_id}",
    )
    assert claims["sub"] == tokens["user"]["id"] and claims["ext"] == "u-7"
    assert claims["sid"] and claims["exp"] - claims["iat"] == 900


def test_client_without_state_gets_none_back(webapp, login_app):
    login = start(webapp, login_app, state=None)
    assert "state" not in query_of(login.finish().location)


def test_tenant_error_return_reaches_the_app(webapp, login_app):
    login = start(webapp, login_app)
    done = callback(webapp, login_app.app_id, state=login.state, error="access_denied",
                    error_description="Wrong passphrase")
    back = query_of(done.location)
    assert back == {"error": "access_denied", "error_description": "Wrong passphrase",
                    "reason": "tenant_denied", "state": "client-state",
                    "iss": f"http://bk.test/v1/apps/{login_app.app_id}"}


# Claims as functions of the time the test runs, never of collection time: a
# token made "700 s old" at collection may be expired once a busy run gets here.
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (lambda now: {"user_id": None}, "user_id_missing"),
        (lambda now: {"user_id": ""}, "user_id_invalid"),
        (lambda now: {"user_id": "x" * 256}, "user_id_invalid"),
        (lambda now: {"exp": now - 120}, "token_expired"),
        (lambda now: {"iat": now + 300}, "token_not_yet_valid"),
        (lambda now: {"iat": now - 700, "exp": now + 60}, "token_too_old"),
        (lambda now: {"exp": now + 90000}, "token_lifetime_too_long"),
        (lambda now: {"exp": str(now + 60)}, "claims_invalid"),
        (lambda now: {"state": "someone-elses-state"}, "claims_invalid"),
        (lambda now: {"custom": ["not", "an", "object"]}, "claims_invalid"),
    ],
)
def test_token_checks_redirect_with_their_reason(webapp, login_app, claims, reason):
    login = start(webapp, login_app)
    back = query_of(login.finish(**claims(int(time.time()))).location)
    assert back["reason"] == reason and back["state"] == "client-state"
    assert back["error"] == "invalid_request" and "code" not in back


def test_bad_signature_and_missing_token(webapp, login_app):
    login = start(webapp, login_app)
    forged = tenant_token("not-the-secret", state=login.state)
    back = query_of(callback(webapp, login_app.app_id, state=login.state, token=forged).location)
    assert back["reason"] == "token_bad_signature"
    login = start(webapp, login_app)
    back = query_of(callback(webapp, login_app.app_id, state=login.state, token="").location)
    assert back["reason"] == "token_missing"


def test_our_own_request_token_sent_back_is_refused(webapp, login_app):
    login = start(webapp, login_app)
    reflected = login.tenant_params["token"]
    back = query_of(callback(webapp, login_app.app_id, state=login.state, token=reflected).location)
    assert back["reason"] == "claims_invalid" and "code" not in back


def test_same_tenant_token_with_a_fresh_state_is_replayed(webapp, login_app):
    first = start(webapp, login_app)
    token = tenant_token(login_app.plain_secrets["custom_auth"])
    ok = callback(webapp, login_app.app_id, state=first.state, token=token)
    assert "code" in query_of(ok.location)
    second = start(webapp, login_app)
    again = callback(webapp, login_app.app_id, state=second.state, token=token)
    assert query_of(again.location)["reason"] == "token_replayed"


def test_require_bound_tokens(webapp, login_app, db):
    login_app.require_bound_tokens = True
    db.commit()
    webapp.app.registry["saas.app_cache"].store(login_app)
    login = start(webapp, login_app)
    back = query_of(login.finish(bound=False).location)
    assert back["reason"] == "claims_invalid"
    assert "code" in query_of(start(webapp, login_app).finish().location)


def _page(response) -> str:
    return response.json["reason"]


def test_state_failures_are_400_pages_without_redirect(webapp, login_app):
    app_id = login_app.app_id
    json_accept = {"Accept": "application/json"}
    missing = webapp.get(f"/v1/apps/{app_id}/callback", {"token": "x"}, headers=json_accept,
                         status=400)
    assert _page(missing) == "state_missing"
    unknown = webapp.get(f"/v1/apps/{app_id}/callback",
                         {"state": f"{app_id}." + "A" * 32, "token": "x"},
                         headers=json_accept, status=400)
    assert _page(unknown) == "state_unknown"
    html = webapp.get(f"/v1/apps/{app_id}/callback", {"state": "junk"}, status=400)
    assert "state_unknown" in html.text and html.content_type == "text/html"

    login = start(webapp, login_app)
    login.finish()
    replay = webapp.get(f"/v1/apps/{app_id}/callback",
                        {"state": login.state, "token": "x"}, headers=json_accept, status=400)
    assert _page(replay) == "state_replayed"
    assert replay.json["request_id"] == replay.headers["X-Request-ID"]


def test_state_of_another_app_is_a_mismatch(webapp, login_app, db, passwords, secret_box):
    other, _ = make_app(db, secret_box, login_app.tenant_id,
                        custom_auth_endpoint="https://tenant.example.com/auth",
                        redirect_uris=[CLIENT_REDIRECT])
    db.commit()
    login = start(webapp, login_app)
    response = webapp.get(f"/v1/apps/{other.app_id}/callback",
                          {"state": login.state, "token": "x"},
                          headers={"Accept": "application/json"}, status=400)
    assert response.json["reason"] == "state_app_mismatch"
    assert "code" in query_of(login.finish().location)  # the state was left intact


def test_state_not_bound_to_this_browser_is_refused_and_left_intact(webapp, login_app):
    login = start(webapp, login_app)
    saved = dict(webapp.cookies)
    webapp.reset()
    token = tenant_token(login_app.plain_secrets["custom_auth"], state=login.state)
    response = webapp.get(f"/v1/apps/{login_app.app_id}/callback",
                          {"state": login.state, "token": token},
                          headers={"Accept": "application/json"}, status=400)
    assert response.json["reason"] == "state_not_bound"
    for name, value in saved.items():
        webapp.set_cookie(name, value)
    assert "code" in query_of(login.finish().location)


def test_login_started_on_another_host_than_the_public_url_is_host_mismatch(
        webapp, login_app, caplog):
    """The by-hand demo's trap: the page opens authorize on 127.0.0.1 while
    saas.public_base_url says bk.test, so the binding cookie never comes back."""
    aside = {"HTTP_HOST": "127.0.0.1:6543"}
    started = webapp.get(f"/v1/apps/{login_app.app_id}/authorize", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1],
    }, extra_environ=aside, status=302)
    assert "bk_state_" in started.headers["Set-Cookie"]  # kept for 127.0.0.1 only
    back = query_of(started.location)
    assert back["redirect_uri"].startswith("http://bk.test/")  # where the tenant sends the user
    token = tenant_token(login_app.plain_secrets["custom_auth"], state=back["state"])
    with caplog.at_level(logging.WARNING, logger="saas.flows"):
        page = webapp.get(f"/v1/apps/{login_app.app_id}/callback",
                          {"state": back["state"], "token": token, "flow": "custom"},
                          headers={"Accept": "text/html"}, status=400)
    assert "<code>host_mismatch</code>" in page.text
    assert "started on 127.0.0.1:6543 but came back to bk.test:80" in page.text
    assert "another browser" not in page.text
    logged = [r.getMessage() for r in caplog.records if r.name == "saas.flows.entry"]
    assert any("host_mismatch" in line and "127.0.0.1:6543" in line for line in logged), logged


def test_callback_on_another_host_than_the_public_url_is_host_mismatch(
        webapp, login_app, caplog):
    login = start(webapp, login_app)  # on bk.test, the public base URL's host
    token = tenant_token(login_app.plain_secrets["custom_auth"], state=login.state)
    with caplog.at_level(logging.WARNING, logger="saas.flows"):
        refused = webapp.get(f"/v1/apps/{login_app.app_id}/callback",
                             {"state": login.state, "token": token},
                             extra_environ={"HTTP_HOST": "localhost:6543"},
                             headers={"Accept": "application/json"}, status=400)
    assert refused.json["reason"] == "host_mismatch"
    assert "localhost:6543" in refused.json["error_description"]
    assert any("host_mismatch" in r.getMessage() and "localhost:6543" in r.getMessage()
               for r in caplog.records if r.name == "saas.flows.entry")
    assert "code" in query_of(login.finish().location)  # the state was left intact


def test_a_request_on_a_host_other_than_the_public_url_is_host_mismatch(webapp, login_app):
    """Started and returned on the same host, but not the public one, no cookie."""
    aside = {"HTTP_HOST": "localhost:6543"}
    started = webapp.get(f"/v1/apps/{login_app.app_id}/authorize", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1],
    }, extra_environ=aside, status=302)
    webapp.reset()
    state = query_of(started.location)["state"]
    refused = webapp.get(f"/v1/apps/{login_app.app_id}/callback", {"state": state, "token": "x"},
                         extra_environ=aside, headers={"Accept": "application/json"}, status=400)
    assert refused.json["reason"] == "host_mismatch"
    assert "saas.public_base_url is http://bk.test" in refused.json["error_description"]


def test_error_page_headings_keep_parameter_names_and_capitals_as_written(webapp, login_app):
    missing = webapp.get(f"/v1/apps/{login_app.app_id}/authorize", {"code_challenge": "a" * 43},
                         headers={"Accept": "text/html"}, status=400)
    heading = missing.html.find("h1").text
    assert heading == "redirect_uri is missing or not on the app's allow-list"
    large = webapp.get(f"/v1/apps/{login_app.app_id}/callback", {"token": "x" * 7000},
                       headers={"Accept": "text/html"}, status=413)
    assert large.html.find("h1").text == "The token is larger than 6 KiB"


def test_authorize_refusals(webapp, login_app):
    app_id = login_app.app_id
    accept = {"Accept": "application/json"}
    unknown = webapp.get("/v1/apps/zzzzzzzz/authorize", headers=accept, status=404)
    assert unknown.json["reason"] == "app_not_found"
    for uri in (None, "https://evil.example.com/cb", CLIENT_REDIRECT + "/",
                CLIENT_REDIRECT.upper(), CLIENT_REDIRECT + "?x=1"):
        params = {"code_challenge": "a" * 43}
        if uri:
            params["redirect_uri"] = uri
        page = webapp.get(f"/v1/apps/{app_id}/authorize", params, headers=accept, status=400)
        assert page.json["reason"] == "redirect_uri_not_allowed"
    plain = authorize(webapp, app_id, code_challenge_method="plain")
    assert query_of(plain.location)["reason"] == "pkce_invalid"
    no_pkce = webapp.get(f"/v1/apps/{app_id}/authorize", {"redirect_uri": CLIENT_REDIRECT})
    assert query_of(no_pkce.location)["reason"] == "pkce_invalid"
    bad_data = authorize(webapp, app_id, data="[1,2]")
    assert query_of(bad_data.location) == {
        "error": "invalid_request", "error_description": "data must be a JSON object of at "
        "most 4 KiB", "reason": "claims_invalid", "state": "client-state",
        "iss": f"http://bk.test/v1/apps/{app_id}"}
    deep = authorize(webapp, app_id, data="[" * 3000 + "]" * 3000)
    assert query_of(deep.location)["reason"] == "claims_invalid"
    long_state = authorize(webapp, app_id, state="s" * 513)
    assert query_of(long_state.location)["reason"] == "claims_invalid"


def test_loopback_redirect_matches_any_port(webapp, login_app):
    login = start(webapp, login_app, redirect_uri="http://127.0.0.1:53124/loop")
    assert query_of(login.finish().location)["code"]
    page = webapp.get(f"/v1/apps/{login_app.app_id}/authorize",
                      {"redirect_uri": "http://127.0.0.1:53124/other", "code_challenge": "a" * 43},
                      headers={"Accept": "application/json"}, status=400)
    assert page.json["reason"] == "redirect_uri_not_allowed"


def test_previous_secret_verifies_during_its_grace(webapp, login_app, db, secret_box):
    import datetime as dt

    secret = login_app.secret("custom_auth")
    old = login_app.plain_secrets["custom_auth"]
    secret.previous_ciphertext = secret.current_ciphertext
    secret.current_ciphertext = secret_box.encrypt("a-brand-new-secret-value-0123456789")
    secret.previous_valid_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    db.commit()
    webapp.app.registry["saas.app_cache"].store(login_app)
    login = Login(webapp, login_app.app_id, old)
    assert "code" in query_of(login.finish().location)
    secret.previous_valid_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.commit()
    webapp.app.registry["saas.app_cache"].store(login_app)
    late = Login(webapp, login_app.app_id, old)
    assert query_of(late.finish().location)["reason"] == "token_bad_signature"


def test_oversized_token_is_413(webapp, login_app):
    login = start(webapp, login_app)
    response = webapp.get(f"/v1/apps/{login_app.app_id}/callback",
                          {"state": login.state, "token": "a" * 7000},
                          headers={"Accept": "application/json"}, status=413)
    assert response.json["reason"] == "payload_too_large"


def test_login_endpoints_answer_503_when_redis_is_unreachable(app_settings):
    import webtest

    from saas.config import configure

    broken = webtest.TestApp(
        configure(dict(app_settings, **{"redis.url": "redis://127.0.0.1:1/0"})).make_wsgi_app()
    )
    accept = {"Accept": "application/json"}
    for path in ("authorize?redirect_uri=x&code_challenge=" + "a" * 43, "callback?state=s&token=t",
                 ".well-known/jwks.json", "me"):
        response = broken.get(f"/v1/apps/abcd1234/{path}", headers=accept, status=503)
        assert response.json["reason"] == "store_unavailable"
    token = broken.post("/v1/apps/abcd1234/token", {"grant_type": "refresh_token",
                                                     "refresh_token": "x"}, status=503)
    assert token.json["reason"] == "store_unavailable" and token.headers["Retry-After"]


def test_header_attacks_and_malformed_tokens_redirect_with_their_reason(webapp, login_app):
    secret = login_app.plain_secrets["custom_auth"]
    login = start(webapp, login_app)
    none_alg = "eyJhbGciOiJub25lIn0." + tenant_token(secret, state=login.state).split(".")[1] + "."
    back = query_of(callback(webapp, login_app.app_id, state=login.state, token=none_alg).location)
    assert back["reason"] == "token_alg_not_allowed" and "code" not in back
    login = start(webapp, login_app)
    back = query_of(callback(webapp, login_app.app_id, state=login.state,
                             token="not.a-jwt").location)
    assert back["reason"] == "token_malformed"


def test_tenant_failure_other_than_denial_is_tenant_error(webapp, login_app):
    login = start(webapp, login_app)
    back = query_of(callback(webapp, login_app.app_id, state=login.state,
                             error="server_error").location)
    assert back["error"] == "server_error" and back["reason"] == "tenant_error"


def test_disabled_user_is_refused(webapp, login_app, registry):
    from saas.users.disabled import set_disabled
    from saas.users.models import end_user_id

    user_id = str(end_user_id(login_app.id, "banned"))
    set_disabled(registry["saas.redis"], registry["saas.redis_keys"], login_app.app_id,
                 user_id, True)
    back = query_of(start(webapp, login_app).finish(user_id="banned").location)
    assert back["error"] == "access_denied" and back["reason"] == "user_disabled"
    set_disabled(registry["saas.redis"], registry["saas.redis_keys"], login_app.app_id,
                 user_id, False)
    assert "code" in query_of(start(webapp, login_app).finish(user_id="banned").location)


def test_login_appends_one_event_without_secrets_or_tokens(webapp, login_app, registry):
    client = registry["saas.redis"]
    stream = registry["saas.event_streams"].key_for_app(login_app.app_id)
    before = client.xrevrange(stream, count=1)
    last_id = before[0][0] if before else b"0-0"
    login = start(webapp, login_app)
    token = tenant_token(login_app.plain_secrets["custom_auth"], user_id="evt-1",
                         state=login.state, custom={"a": 1}, profile={"name": "Eve"})
    callback(webapp, login_app.app_id, state=login.state, token=token)
    entries = client.xrange(stream, min=b"(" + last_id)
    events = [json.loads(fields[b"event"]) for _id, fields in entries]
    ours = [e for e in events if any(a["app_id"] == login_app.app_id for a in e["audit"])]
    assert [a["type"] for e in ours for a in e["audit"]] == ["login.started", "login.succeeded"]
    upsert = ours[-1]["user"]
    assert upsert["external_id"] == "evt-1" and upsert["custom"] == {"a": 1}
    assert upsert["profile"] == {"name": "Eve"} and upsert["app_uuid"] == str(login_app.id)
    raw = json.dumps(ours)
    assert token not in raw and token.split(".")[2] not in raw
    assert login_app.plain_secrets["custom_auth"] not in raw and login.state not in raw
