"""Tokens and sessions (DESIGN §6): exchange, refresh rotation, reuse, logout."""

from __future__ import annotations

import time

from saas.tokens import login_sessions as sessions_module
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT, Login, query_of
from tests.store_state import stream_events


def login(webapp, app) -> Login:
    return Login(webapp, app.app_id, app.plain_secrets["custom_auth"])


def token_post(webapp, app, status=200, **params):
    return webapp.post(f"/v1/apps/{app.app_id}/token", params, status=status)


def me(webapp, app, access_token, status=200):
    return webapp.get(f"/v1/apps/{app.app_id}/me",
                      headers={"Authorization": f"Bearer {access_token}"}, status=status)


def test_token_response_shape_and_no_store(webapp, login_app):
    flow = login(webapp, login_app)
    code = query_of(flow.finish().location)["code"]
    response = flow.exchange(code)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token",
                         "refresh_expires_in", "user"}
    assert body["refresh_expires_in"] == 30 * 24 * 3600
    assert len(body["refresh_token"]) >= 43 + 33


def test_pkce_and_redirect_uri_must_match(webapp, login_app):
    flow = login(webapp, login_app)
    code = query_of(flow.finish().location)["code"]
    wrong = flow.exchange(code, status=400, verifier="x" * 43)
    assert wrong.json["error"] == "invalid_grant" and wrong.json["reason"] == "pkce_invalid"
    # The code was consumed by that attempt: single use whatever the outcome.
    again = flow.exchange(code, status=400)
    assert again.json["reason"] == "code_invalid"


def test_reused_code_revokes_the_session_it_created(webapp, login_app):
    flow = login(webapp, login_app)
    code = query_of(flow.finish().location)["code"]
    tokens = flow.exchange(code).json
    reuse = flow.exchange(code, status=400)
    assert reuse.json == {**reuse.json, "error": "invalid_grant", "reason": "code_invalid"}
    assert me(webapp, login_app, tokens["access_token"], status=401).headers[
        "WWW-Authenticate"] == 'Bearer error="invalid_token"'
    refresh = token_post(webapp, login_app, status=400, grant_type="refresh_token",
                         refresh_token=tokens["refresh_token"])
    assert refresh.json["reason"] == "session_revoked"


def _audit_records(registry, app, type_: str) -> list[dict]:
    """The app's records of a type (the stream holds every earlier test's too)."""
    return [record for event in stream_events(registry["saas.redis"],
                                              registry["saas.event_streams"])
            for record in event["audit"]
            if record["type"] == type_ and record.get("app_id") == app.app_id]


def test_refresh_rotates_and_reuse_after_grace_revokes(webapp, login_app, monkeypatch,
                                                        registry):
    tokens = login(webapp, login_app).tokens()
    first = token_post(webapp, login_app, grant_type="refresh_token",
                       refresh_token=tokens["refresh_token"]).json
    assert first["refresh_token"] != tokens["refresh_token"]
    assert me(webapp, login_app, first["access_token"]).json["id"] == tokens["user"]["id"]

    # A retry within 10 s gets the very same successor.
    retry = token_post(webapp, login_app, grant_type="refresh_token",
                       refresh_token=tokens["refresh_token"]).json
    assert retry["refresh_token"] == first["refresh_token"]

    # After the grace, the rotated token is a reuse: the whole session dies.
    monkeypatch.setattr(sessions_module, "RETRY_GRACE_MS", -1)
    reused = token_post(webapp, login_app, status=400, grant_type="refresh_token",
                        refresh_token=tokens["refresh_token"])
    assert reused.json["reason"] == "refresh_reused"
    [reuse] = _audit_records(registry, login_app, "token.refresh_reuse_detected")
    assert (reuse["user_id"], reuse["external_id"]) == (tokens["user"]["id"],
                                                        tokens["user"]["external_id"])
    dead = token_post(webapp, login_app, status=400, grant_type="refresh_token",
                      refresh_token=first["refresh_token"])
    assert dead.json["reason"] == "session_revoked"
    me(webapp, login_app, first["access_token"], status=401)


def test_refresh_token_errors(webapp, login_app):
    bad = token_post(webapp, login_app, status=400, grant_type="refresh_token",
                     refresh_token="0" * 32 + ".nope")
    assert bad.json["reason"] == "refresh_invalid"
    missing = token_post(webapp, login_app, status=400, grant_type="refresh_token")
    assert missing.json["error"] == "invalid_request"
    unsupported = token_post(webapp, login_app, status=400, grant_type="password")
    assert unsupported.json["error"] == "unsupported_grant_type"
    not_json = webapp.post(f"/v1/apps/{login_app.app_id}/token", "{not json",
                           content_type="application/json", status=400)
    assert not_json.json["error"] == "invalid_request"


def test_json_body_is_accepted(webapp, login_app):
    flow = login(webapp, login_app)
    code = query_of(flow.finish().location)["code"]
    response = webapp.post_json(f"/v1/apps/{login_app.app_id}/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT,
        "code_verifier": flow.verifier,
    })
    assert response.json["token_type"] == "Bearer"


def test_logout_kills_refresh_and_me(webapp, login_app, registry):
    tokens = login(webapp, login_app).tokens()
    webapp.post(f"/v1/apps/{login_app.app_id}/logout",
                {"refresh_token": tokens["refresh_token"]}, status=204)
    [logout] = _audit_records(registry, login_app, "logout")  # with the session's user
    assert (logout["user_id"], logout["external_id"]) == (tokens["user"]["id"],
                                                          tokens["user"]["external_id"])
    me(webapp, login_app, tokens["access_token"], status=401)
    dead = token_post(webapp, login_app, status=400, grant_type="refresh_token",
                      refresh_token=tokens["refresh_token"])
    assert dead.json["reason"] == "session_revoked"


def test_logout_with_bearer_and_json(webapp, login_app):
    tokens = login(webapp, login_app).tokens()
    webapp.post(f"/v1/apps/{login_app.app_id}/logout",
                headers={"Authorization": "Bearer " + tokens["access_token"]}, status=204)
    me(webapp, login_app, tokens["access_token"], status=401)
    other = login(webapp, login_app).tokens()
    webapp.post_json(f"/v1/apps/{login_app.app_id}/logout",
                     {"refresh_token": other["refresh_token"]}, status=204)
    me(webapp, login_app, other["access_token"], status=401)


def test_me_refuses_foreign_expired_and_garbage_tokens(webapp, login_app, db, passwords,
                                                       secret_box):
    tokens = login(webapp, login_app).tokens()
    member = make_member(db, passwords)
    other_app, _ = make_app(db, secret_box, member.tenant_id)
    db.commit()
    me(webapp, other_app, tokens["access_token"], status=401)
    me(webapp, login_app, "garbage", status=401)
    me(webapp, login_app, tokens["access_token"][:-4] + "AAAA", status=401)
    webapp.get(f"/v1/apps/{login_app.app_id}/me", status=401)


def test_access_token_lifetime_comes_from_the_app(webapp, login_app, db):
    login_app.access_token_ttl = 120
    db.commit()
    webapp.app.registry["saas.app_cache"].store(login_app)
    tokens = login(webapp, login_app).tokens()
    assert tokens["expires_in"] == 120
    import jwt

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 5


def test_logins_and_me_work_with_postgres_unreachable_for_cached_apps(webapp, login_app,
                                                                       app_settings):
    import webtest

    from saas.config import configure

    webapp.app.registry["saas.app_cache"].store(login_app)  # the cache is warm
    no_db = webtest.TestApp(configure(dict(app_settings, **{
        "sqlalchemy.url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})).make_wsgi_app(),
        extra_environ={"HTTP_HOST": "bk.test"})
    tokens = Login(no_db, login_app.app_id, login_app.plain_secrets["custom_auth"]).tokens(
        user_id="offline", custom={"mode": "offline"})
    profile = me(no_db, login_app, tokens["access_token"]).json
    assert profile["custom"] == {"mode": "offline"} and profile["external_id"] == "offline"
    refreshed = token_post(no_db, login_app, grant_type="refresh_token",
                           refresh_token=tokens["refresh_token"]).json
    assert refreshed["access_token"]
    # The dashboard, which needs the database, says so plainly.
    page = no_db.get("/readyz", status=503)
    assert page.json["failing"] == ["postgres"]


def _with_claims_of(token: str, other: str) -> str:
    """``token``'s header and signature around ``other``'s claims."""
    header, _, signature = token.split(".")
    return ".".join((header, other.split(".")[1], signature))


def test_me_names_keys_from_unchecked_claims_but_believes_only_signed_ones(
        webapp, login_app, registry):
    # Once the process knows the app, /me reads the settings, the session and
    # the overlay in one round trip keyed by the token's claims before the
    # signature is checked (saas/tokens/bearer.py).
    first = login(webapp, login_app).tokens()
    second = login(webapp, login_app).tokens()
    assert me(webapp, login_app, first["access_token"]).json["id"] == first["user"]["id"]
    assert registry["saas.app_cache"].known(login_app.app_id)
    forged = _with_claims_of(first["access_token"], second["access_token"])
    refused = me(webapp, login_app, forged, status=401)
    assert refused.json["error"] == "invalid_token"
    # The session check still applies on this path.
    webapp.post(f"/v1/apps/{login_app.app_id}/logout",
                {"refresh_token": second["refresh_token"]}, status=204)
    assert me(webapp, login_app, second["access_token"], status=401).json["reason"] \
        == "session_revoked"
    # An unknown app is 404 before any token check, known or not.
    webapp.get("/v1/apps/nosuchapp1/me", headers={
        "Authorization": "Bearer " + first["access_token"]}, status=404)


def test_settings_gone_from_redis_are_read_again_on_the_one_round_trip_path(
        webapp, login_app, registry):
    tokens = login(webapp, login_app).tokens()
    me(webapp, login_app, tokens["access_token"])
    cache = registry["saas.app_cache"]
    cache.redis.delete(cache.key(login_app.app_id))  # expired, or evicted
    assert me(webapp, login_app, tokens["access_token"]).json["id"] == tokens["user"]["id"]
    assert cache.redis.get(cache.key(login_app.app_id)) is not None  # filled again
