"""OpenID Connect (docs/oidc.md): the provider's answers, checked with PyJWT
and the contract's RFC errors. Real relying-party libraries drive the same
endpoints end to end in tests/integration/test_oidc_clients.py."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import urlsplit

import jwt
import pytest

from saas.apps.models import ClientSecret
from saas.crypto import hash_token
from saas.webhooks.events import audit_data
from tests.flows import CLIENT_REDIRECT, Login, authorize, query_of
from tests.store_state import stream_events

SCOPES = "openid profile email offline_access"
PROFILE = {"name": "Ada Lovelace", "given_name": "Ada", "email": "ada@example.com",
           "email_verified": True, "picture": 42, "nickname": "not released"}
CLIENT_SECRET = "cs_" + "s" * 43
LOGOUT_URI = "https://app.example.com/signed-out"


def issuer(app) -> str:
    return f"http://bk.test/v1/apps/{app.app_id}"


@pytest.fixture
def oidc_app(login_app, db, registry):
    login_app.post_logout_redirect_uris = [LOGOUT_URI]
    db.commit()
    registry["saas.app_cache"].store(login_app)
    return login_app


@pytest.fixture
def confidential_app(oidc_app, db, registry):
    oidc_app.client_type = "confidential"
    oidc_app.client_secret = ClientSecret(current_hash=hash_token(CLIENT_SECRET))
    db.commit()
    registry["saas.app_cache"].store(oidc_app)
    return oidc_app


def secret_of(app) -> str:
    return app.plain_secrets["custom_auth"]


def oidc_login(webapp, app, *, scope=SCOPES, nonce="n-0S6_WzA2Mj", **params) -> Login:
    extra = {"scope": scope, "response_type": "code", "client_id": app.app_id, **params}
    if nonce:
        extra["nonce"] = nonce
    return Login(webapp, app.app_id, secret_of(app), **extra)


def code_of(login: Login, **claims) -> str:
    claims.setdefault("profile", PROFILE)
    back = query_of(login.finish(user_id="ada", **claims).location)
    return back["code"]


def tokens_of(webapp, app, **kwargs) -> dict:
    login = oidc_login(webapp, app, **kwargs)
    return login.exchange(code_of(login)).json


def verified_id_token(webapp, app, token: str) -> dict:
    jwks = webapp.get(f"/v1/apps/{app.app_id}/.well-known/jwks.json").json
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]].key
    return jwt.decode(token, key, algorithms=["ES256"], audience=app.app_id,
                      issuer=issuer(app), options={"verify_iat": False})


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def basic(client_id: str, secret: str) -> dict:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# Discovery ------------------------------------------------------------------------

def test_discovery_names_every_endpoint_under_the_issuer(webapp, oidc_app):
    answer = webapp.get(f"/v1/apps/{oidc_app.app_id}/.well-known/openid-configuration")
    meta = answer.json
    assert answer.headers["Cache-Control"] == "public, max-age=300"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    base = issuer(oidc_app)
    assert meta["issuer"] == base
    assert {meta[name] for name in ("authorization_endpoint", "token_endpoint",
                                    "userinfo_endpoint", "jwks_uri", "revocation_endpoint",
                                    "introspection_endpoint", "end_session_endpoint")} == {
        base + "/authorize", base + "/token", base + "/userinfo",
        base + "/.well-known/jwks.json", base + "/revoke", base + "/introspect",
        base + "/end-session"}
    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query", "form_post"]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == [
        "none", "client_secret_basic", "client_secret_post"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["scopes_supported"]) == {"openid", "profile", "email", "offline_access"}
    # Every advertised endpoint answers (none is a 404).
    for name in ("authorization_endpoint", "userinfo_endpoint", "jwks_uri",
                 "end_session_endpoint"):
        assert webapp.get(urlsplit(meta[name]).path, expect_errors=True).status_int != 404
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert webapp.post(urlsplit(meta[name]).path, expect_errors=True).status_int != 404


def test_discovery_of_an_unknown_app_is_404(webapp):
    answer = webapp.get("/v1/apps/zzzzzzzz/.well-known/openid-configuration", status=404)
    assert answer.json["reason"] == "app_not_found"


# Login, ID token, refresh ---------------------------------------------------------

def test_an_oidc_login_returns_an_id_token_with_the_granted_claims(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app)
    done = login.finish(user_id="ada", profile=PROFILE, amr=["pwd", "mfa"])
    back = query_of(done.location)
    assert back["iss"] == issuer(oidc_app) and back["state"] == "client-state"
    answer = login.exchange(back["code"])
    tokens = answer.json
    assert tokens["scope"] == SCOPES
    claims = verified_id_token(webapp, oidc_app, tokens["id_token"])
    assert jwt.get_unverified_header(tokens["id_token"])["typ"] == "JWT"
    assert claims["sub"] == tokens["user"]["id"]
    assert claims["aud"] == claims["azp"] == oidc_app.app_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["amr"] == ["ext", "pwd", "mfa"]
    assert claims["exp"] - claims["iat"] == oidc_app.access_token_ttl
    assert abs(claims["auth_time"] - time.time()) < 600
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sid"] == access["sid"] and access["scope"] == SCOPES
    # Standard names of standard types only; nothing else of the profile leaves.
    assert claims["name"] == "Ada Lovelace" and claims["given_name"] == "Ada"
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert "picture" not in claims and "nickname" not in claims


def test_scopes_decide_the_claims_and_unknown_scopes_are_ignored(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app, scope="openid email phone")
    assert tokens["scope"] == "openid email"
    claims = verified_id_token(webapp, oidc_app, tokens["id_token"])
    assert claims["email"] == "ada@example.com" and "name" not in claims


def test_a_login_without_openid_gets_no_id_token(webapp, oidc_app):
    login = Login(webapp, oidc_app.app_id, secret_of(oidc_app))  # an SDK-era client
    tokens = login.exchange(code_of(login)).json
    assert "id_token" not in tokens and "scope" not in tokens
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert "scope" not in access


def test_a_refresh_keeps_the_scopes_and_the_login_facts(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app)
    first = login.exchange(code_of(login, amr=["pwd"])).json
    refreshed = webapp.post(f"/v1/apps/{oidc_app.app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json
    assert refreshed["scope"] == SCOPES
    before = verified_id_token(webapp, oidc_app, first["id_token"])
    after = verified_id_token(webapp, oidc_app, refreshed["id_token"])
    assert "nonce" not in after
    for name in ("auth_time", "sid", "amr", "sub", "email"):
        assert after[name] == before[name]


def test_a_tenant_amr_that_is_not_a_list_of_names_is_refused(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app)
    back = query_of(login.finish(user_id="ada", amr="pwd").location)
    assert back["reason"] == "claims_invalid" and back["iss"] == issuer(oidc_app)


def test_login_hint_and_ui_locales_reach_the_tenant(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app, login_hint="ada@example.com", ui_locales="fr en")
    request_token = jwt.decode(login.tenant_params["token"], secret_of(oidc_app),
                               algorithms=["HS256"])
    assert request_token["data"] == {"login_hint": "ada@example.com", "ui_locales": "fr en"}


def test_form_post_answers_a_page_that_posts_the_code(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app, response_mode="form_post")
    page = login.finish(user_id="ada", status=200)
    form = page.html.find("form")
    assert form["action"] == CLIENT_REDIRECT and form["method"] == "post"
    fields = {field["name"]: field["value"] for field in form.find_all("input")}
    assert set(fields) == {"code", "state", "iss"} and fields["iss"] == issuer(oidc_app)
    nonce = page.html.find("script")["nonce"]
    assert f"'nonce-{nonce}'" in page.headers["Content-Security-Policy"]
    assert login.exchange(fields["code"]).json["id_token"]


# Authorize refusals ----------------------------------------------------------------

def test_a_foreign_client_id_is_a_page_never_a_redirect(webapp, oidc_app):
    answer = webapp.get(f"/v1/apps/{oidc_app.app_id}/authorize", {
        "client_id": "someone1", "redirect_uri": CLIENT_REDIRECT, "code_challenge": "a" * 43},
        headers={"Accept": "application/json"}, status=400)
    assert answer.json["reason"] == "client_id_mismatch" and "Location" not in answer.headers


@pytest.mark.parametrize(("params", "error", "reason"), [
    ({"response_type": "token"}, "unsupported_response_type", "unsupported_response_type"),
    ({"response_type": "code id_token"}, "unsupported_response_type",
     "unsupported_response_type"),
    ({"prompt": "none"}, "login_required", "login_required"),
    ({"prompt": "none login"}, "invalid_request", "claims_invalid"),
    ({"prompt": "sometimes"}, "invalid_request", "claims_invalid"),
    ({"nonce": "n" * 256}, "invalid_request", "claims_invalid"),
    ({"max_age": "-1"}, "invalid_request", "claims_invalid"),
    ({"response_mode": "fragment"}, "invalid_request", "claims_invalid"),
])
def test_authorize_refusals_reach_the_client_with_iss(webapp, oidc_app, params, error, reason):
    back = query_of(authorize(webapp, oidc_app.app_id, scope="openid", **params).location)
    assert back["error"] == error and back["reason"] == reason
    assert back["iss"] == issuer(oidc_app) and back["state"] == "client-state"


def test_prompt_login_and_max_age_run_a_fresh_tenant_login(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app, prompt="login consent", max_age="0")
    assert urlsplit(login.tenant_url).hostname == "tenant.example.com"


# Client authentication -------------------------------------------------------------------

def exchange(webapp, app, login: Login, code: str, status=200, headers=None, **extra):
    return webapp.post(f"/v1/apps/{app.app_id}/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
        "code_verifier": login.verifier, **extra}, headers=headers or {}, status=status)


@pytest.mark.parametrize("credentials", [
    {}, {"client_id": "APP"}, {"client_id": "APP", "client_secret": "cs_wrong"},
    {"headers": "wrong"},
])
def test_a_confidential_client_must_prove_its_secret(webapp, confidential_app, credentials):
    login = oidc_login(webapp, confidential_app)
    code = code_of(login)
    extra = {k: (confidential_app.app_id if v == "APP" else v)
             for k, v in credentials.items() if k != "headers"}
    headers = basic(confidential_app.app_id, "cs_wrong") if "headers" in credentials else None
    answer = exchange(webapp, confidential_app, login, code, status=401, headers=headers,
                      **extra)
    assert answer.json["error"] == "invalid_client"
    assert answer.json["reason"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
    # The refused exchange spent nothing: the code still works with the secret.
    ok = exchange(webapp, confidential_app, login, code,
                  headers=basic(confidential_app.app_id, CLIENT_SECRET))
    assert ok.json["id_token"]


def test_client_secret_post_works_and_two_methods_at_once_do_not(webapp, confidential_app):
    login = oidc_login(webapp, confidential_app)
    code = code_of(login)
    both = exchange(webapp, confidential_app, login, code, status=400,
                    headers=basic(confidential_app.app_id, CLIENT_SECRET),
                    client_secret=CLIENT_SECRET)
    assert both.json["error"] == "invalid_request"
    posted = exchange(webapp, confidential_app, login, code, client_id=confidential_app.app_id,
                      client_secret=CLIENT_SECRET)
    assert posted.json["id_token"]


def test_a_public_client_has_no_secret_and_its_own_id(webapp, oidc_app):
    login = oidc_login(webapp, oidc_app)
    code = code_of(login)
    for extra in ({"client_id": "someone1"}, {"client_secret": CLIENT_SECRET}):
        answer = exchange(webapp, oidc_app, login, code, status=401, **extra)
        assert answer.json["error"] == "invalid_client"
    assert exchange(webapp, oidc_app, login, code, client_id=oidc_app.app_id).json["id_token"]


def test_a_confidential_client_may_skip_pkce_only_when_the_app_allows(webapp, confidential_app,
                                                                      db, registry):
    params = {"redirect_uri": CLIENT_REDIRECT, "scope": "openid", "response_type": "code"}
    refused = webapp.get(f"/v1/apps/{confidential_app.app_id}/authorize", params)
    assert query_of(refused.location)["reason"] == "pkce_invalid"
    confidential_app.pkce_required = False
    db.commit()
    registry["saas.app_cache"].store(confidential_app)
    started = webapp.get(f"/v1/apps/{confidential_app.app_id}/authorize", params)
    state = query_of(started.location)["state"]
    login = Login.__new__(Login)
    login.webapp, login.app_id, login.secret = webapp, confidential_app.app_id, \
        secret_of(confidential_app)
    login.state, login.redirect_uri = state, CLIENT_REDIRECT
    code = code_of(login)
    answer = webapp.post(f"/v1/apps/{confidential_app.app_id}/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT},
        headers=basic(confidential_app.app_id, CLIENT_SECRET))
    assert answer.json["id_token"]


# UserInfo ------------------------------------------------------------------------------

def test_userinfo_answers_the_granted_claims(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app, scope="openid email")
    path = f"/v1/apps/{oidc_app.app_id}/userinfo"
    got = webapp.get(path, headers=bearer(tokens["access_token"]))
    assert got.json == {"sub": tokens["user"]["id"], "email": "ada@example.com",
                        "email_verified": True}
    assert got.headers["Cache-Control"] == "no-store"
    posted = webapp.post(path, {"access_token": tokens["access_token"]})
    assert posted.json == got.json


def test_userinfo_adds_custom_only_when_the_app_says_so(webapp, oidc_app, db, registry):
    oidc_app.oidc_custom_claim = True
    db.commit()
    registry["saas.app_cache"].store(oidc_app)
    login = oidc_login(webapp, oidc_app)
    tokens = login.exchange(code_of(login, custom={"plan": "pro"})).json
    got = webapp.get(f"/v1/apps/{oidc_app.app_id}/userinfo", headers=bearer(tokens["access_token"]))
    assert got.json["custom"] == {"plan": "pro"}
    assert "custom" not in verified_id_token(webapp, oidc_app, tokens["id_token"])


def test_userinfo_refuses_tokens_it_must_not_honour(webapp, oidc_app):
    path = f"/v1/apps/{oidc_app.app_id}/userinfo"
    tokens = tokens_of(webapp, oidc_app)
    # An ID token is no access token, here or at /me.
    for where in (path, f"/v1/apps/{oidc_app.app_id}/me"):
        refused = webapp.get(where, headers=bearer(tokens["id_token"]), status=401)
        assert refused.json["error"] == "invalid_token"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # A token issued without openid: 403 insufficient_scope.
    plain = Login(webapp, oidc_app.app_id, secret_of(oidc_app))
    plain_tokens = plain.exchange(code_of(plain)).json
    scoped = webapp.get(path, headers=bearer(plain_tokens["access_token"]), status=403)
    assert scoped.json["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in scoped.headers["WWW-Authenticate"]
    # A revoked token: 401.
    webapp.post(f"/v1/apps/{oidc_app.app_id}/revoke", {"token": tokens["refresh_token"]})
    revoked = webapp.get(path, headers=bearer(tokens["access_token"]), status=401)
    assert revoked.json["error"] == "invalid_token"


# Revocation and introspection ------------------------------------------------------------------

def test_revoking_a_refresh_token_ends_its_session(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    path = f"/v1/apps/{oidc_app.app_id}/revoke"
    answer = webapp.post(path, {"token": tokens["refresh_token"],
                                "token_type_hint": "refresh_token"})
    assert answer.status_int == 200 and answer.body == b""
    refused = webapp.post(f"/v1/apps/{oidc_app.app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, status=400)
    assert refused.json["reason"] == "session_revoked"
    # Again, or anything unknown: 200 all the same.
    webapp.post(path, {"token": tokens["refresh_token"]}, status=200)
    webapp.post(path, {"token": "nothing-we-issued"}, status=200)


def audit_records(registry, app, type_: str) -> list[dict]:
    """The app's audit records of a type (the stream holds other tests' too)."""
    return [record for event in stream_events(registry["saas.redis"],
                                              registry["saas.event_streams"])
            for record in event["audit"]
            if record["type"] == type_ and record.get("app_id") == app.app_id]


def test_a_revocation_is_audited_and_becomes_a_session_revoked_webhook(webapp, oidc_app,
                                                                       registry):
    tokens = tokens_of(webapp, oidc_app)
    webapp.post(f"/v1/apps/{oidc_app.app_id}/revoke", {"token": tokens["refresh_token"]})
    webapp.post(f"/v1/apps/{oidc_app.app_id}/revoke", {"token": tokens["refresh_token"]})
    [record] = audit_records(registry, oidc_app, "token.revoked")  # once: the second ended nothing
    assert record["user_id"] == tokens["user"]["id"] and record["external_id"] == "ada"
    assert tokens["refresh_token"] not in str(record)
    data = audit_data(record)
    assert data["cause"] == "revocation" and data["session_id"] == record["details"]["sid"]


def test_revoking_an_access_token_ends_its_session(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    webapp.post(f"/v1/apps/{oidc_app.app_id}/revoke", {"token": tokens["access_token"],
                                                      "client_id": oidc_app.app_id})
    webapp.get(f"/v1/apps/{oidc_app.app_id}/me", headers=bearer(tokens["access_token"]),
               status=401)


def test_another_apps_token_is_not_revoked(webapp, oidc_app, db, secret_box, registry):
    from tests.factories import make_app
    other, _ = make_app(db, secret_box, oidc_app.tenant_id, custom_auth_endpoint=(
        "https://tenant.example.com/auth"), redirect_uris=[CLIENT_REDIRECT])
    db.commit()
    tokens = tokens_of(webapp, oidc_app)
    webapp.post(f"/v1/apps/{other.app_id}/revoke", {"token": tokens["refresh_token"]},
                status=200)
    webapp.post(f"/v1/apps/{other.app_id}/revoke", {"token": tokens["access_token"]},
                status=200)
    webapp.get(f"/v1/apps/{oidc_app.app_id}/me", headers=bearer(tokens["access_token"]))


def test_introspection_is_for_confidential_clients(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    refused = webapp.post(f"/v1/apps/{oidc_app.app_id}/introspect",
                          {"token": tokens["access_token"], "client_id": oidc_app.app_id},
                          status=401)
    assert refused.json["error"] == "invalid_client"


def test_introspection_tells_live_tokens_from_dead_ones(webapp, confidential_app):
    app = confidential_app
    login = oidc_login(webapp, app)
    tokens = exchange(webapp, app, login, code_of(login),
                      headers=basic(app.app_id, CLIENT_SECRET)).json
    auth = basic(app.app_id, CLIENT_SECRET)

    def introspect(token):
        return webapp.post(f"/v1/apps/{app.app_id}/introspect", {"token": token},
                           headers=auth).json

    access = introspect(tokens["access_token"])
    assert access["active"] is True and access["token_type"] == "Bearer"
    assert access["scope"] == SCOPES and access["client_id"] == app.app_id
    assert access["sub"] == tokens["user"]["id"] and access["exp"] > access["iat"]
    refresh = introspect(tokens["refresh_token"])
    assert refresh["active"] is True and refresh["sid"] == access["sid"]
    assert introspect(tokens["id_token"]) == {"active": False}
    assert introspect("made-up") == {"active": False}
    rotated = webapp.post(f"/v1/apps/{app.app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=auth).json
    assert introspect(tokens["refresh_token"]) == {"active": False}
    webapp.post(f"/v1/apps/{app.app_id}/revoke", {"token": rotated["refresh_token"]},
                headers=auth)
    assert introspect(tokens["access_token"]) == {"active": False}


# End session ------------------------------------------------------------------------------

def test_end_session_revokes_and_returns_to_a_listed_uri(webapp, oidc_app, registry):
    tokens = tokens_of(webapp, oidc_app)
    answer = webapp.get(f"/v1/apps/{oidc_app.app_id}/end-session", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT_URI,
        "state": "bye", "client_id": oidc_app.app_id}, status=302)
    assert answer.location == LOGOUT_URI + "?state=bye"
    webapp.get(f"/v1/apps/{oidc_app.app_id}/me", headers=bearer(tokens["access_token"]),
               status=401)
    [record] = audit_records(registry, oidc_app, "logout")
    assert record["details"]["via"] == "end_session"


def test_end_session_to_an_unlisted_uri_redirects_nowhere(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    page = webapp.get(f"/v1/apps/{oidc_app.app_id}/end-session", {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example.com/"}, status=200)
    assert "Location" not in page.headers
    assert page.html.find("h1").text == "You are signed out"
    assert page.html.find(id="not-returned") is not None


def test_without_a_hint_nothing_ends_and_nothing_redirects(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    page = webapp.get(f"/v1/apps/{oidc_app.app_id}/end-session", {
        "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"}, status=200)
    assert "Location" not in page.headers
    webapp.get(f"/v1/apps/{oidc_app.app_id}/me", headers=bearer(tokens["access_token"]))


def test_a_bad_hint_ends_nothing(webapp, oidc_app):
    tokens = tokens_of(webapp, oidc_app)
    forged = tokens["id_token"][:-4] + ("AAAA" if not tokens["id_token"].endswith("AAAA")
                                        else "BBBB")
    for hint in (forged, tokens["access_token"]):
        webapp.get(f"/v1/apps/{oidc_app.app_id}/end-session", {
            "id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI},
            headers={"Accept": "text/html"}, status=400)
    webapp.get(f"/v1/apps/{oidc_app.app_id}/me", headers=bearer(tokens["access_token"]))
