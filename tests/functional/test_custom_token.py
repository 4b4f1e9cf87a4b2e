"""Custom-token login (DESIGN §5.1): the Skygear protocol, reason by reason."""

from __future__ import annotations

import time

import jwt
import pytest
from sqlalchemy import func, select

from saas.users.models import EndUser


@pytest.fixture
def token_app(login_app, db, registry):
    login_app.custom_token_enabled = True
    db.commit()
    registry["saas.app_cache"].store(login_app)
    return login_app


def skygear_token(secret: str, user_id: str = "User id of your server", **overrides) -> str:
    """Exactly as the source document's PyJWT example makes it."""
    now_seconds = int(time.time())
    payload = {
        "sub": user_id,
        "iat": now_seconds,
        "exp": now_seconds + (60 * 60),  # expire within 1 hour
        "skyprofile": {"email": "", "username": "user"},
    }
    payload.update(overrides)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret,
                      algorithm="HS256")


def post(webapp, app, token, status=200):
    return webapp.post_json(f"/v1/apps/{app.app_id}/login/custom-token", {"token": token},
                            status=status)


def test_source_document_token_logs_in(webapp, token_app):
    secret = token_app.plain_secrets["custom_token"]
    tokens = post(webapp, token_app, skygear_token(secret)).json
    assert tokens["token_type"] == "Bearer"
    assert tokens["user"]["external_id"] == "User id of your server"
    me = webapp.get(f"/v1/apps/{token_app.app_id}/me",
                    headers={"Authorization": "Bearer " + tokens["access_token"]}).json
    assert me["profile"] == {"email": "", "username": "user"}
    refreshed = webapp.post(f"/v1/apps/{token_app.app_id}/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json
    assert refreshed["user"] == tokens["user"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sub": "x" * 37}, "user_id_invalid"),
        ({"iat": 0, "exp": 3601}, "token_lifetime_too_long"),
        ({"iat": -7200, "exp": -3600}, "token_expired"),
        ({"iat": 300, "exp": 600}, "token_not_yet_valid"),
        ({"iat": None}, "claims_invalid"),
        ({"skyprofile": "not an object"}, "claims_invalid"),
    ],
)
def test_bad_tokens_fail_with_their_reason(webapp, token_app, db, overrides, reason):
    now = int(time.time())
    claims = {k: now + v if k in ("iat", "exp") and v is not None else v
              for k, v in overrides.items()}
    response = post(webapp, token_app, skygear_token(token_app.plain_secrets["custom_token"],
                                                     user_id="bad-one", **claims), status=400)
    assert response.json["error"] == "invalid_grant" and response.json["reason"] == reason
    assert response.headers["Cache-Control"] == "no-store"
    assert _users(db, token_app) == 0


def test_wrong_secrets_and_replay(webapp, token_app, db):
    wrong = post(webapp, token_app, skygear_token("some-other-secret-0123456789abcdef"),
                 status=400)
    assert wrong.json["reason"] == "token_bad_signature"
    other_kind = post(webapp, token_app, skygear_token(token_app.plain_secrets["custom_auth"]),
                      status=400)
    assert other_kind.json["reason"] == "token_bad_signature"
    token = skygear_token(token_app.plain_secrets["custom_token"], user_id="once")
    post(webapp, token_app, token)
    replay = post(webapp, token_app, token, status=400)
    assert replay.json["reason"] == "token_replayed"
    by_jti = skygear_token(token_app.plain_secrets["custom_token"], user_id="jti", jti="j-1")
    post(webapp, token_app, by_jti)
    again = skygear_token(token_app.plain_secrets["custom_token"], user_id="jti", jti="j-1",
                          exp=int(time.time()) + 1800)  # another signature, same jti
    assert post(webapp, token_app, again, status=400).json["reason"] == "token_replayed"


def test_feature_disabled_and_malformed_requests(webapp, login_app, token_app, db, registry):
    token = skygear_token(token_app.plain_secrets["custom_token"], user_id="nobody")
    token_app.custom_token_enabled = False
    db.commit()
    registry["saas.app_cache"].store(token_app)
    off = post(webapp, token_app, token, status=403)
    assert off.json["error"] == "unauthorized_client"
    assert off.json["reason"] == "feature_disabled"
    token_app.custom_token_enabled = True
    db.commit()
    registry["saas.app_cache"].store(token_app)
    path = f"/v1/apps/{token_app.app_id}/login/custom-token"
    missing = webapp.post_json(path, {}, status=400)
    assert missing.json["error"] == "invalid_request"
    assert missing.json["reason"] == "token_missing"
    garbage = webapp.post(path, "{nope", content_type="application/json", status=400)
    assert garbage.json["error"] == "invalid_request"
    form = webapp.post(path, {"token": token}, status=400)
    assert form.json["error"] == "invalid_request"
    huge = webapp.post_json(path, {"token": "a" * 70_000}, status=413)
    assert huge.json["reason"] == "payload_too_large"
    assert _users(db, token_app) == 0


def test_disabled_user_is_refused(webapp, token_app, registry):
    from saas.flows.login import user_id_for
    from saas.users.disabled import set_disabled

    set_disabled(registry["saas.redis"], registry["saas.redis_keys"], token_app.app_id,
                 user_id_for(registry["saas.app_cache"].load(None, token_app.app_id),
                             "banned"), True)
    response = post(webapp, token_app, skygear_token(token_app.plain_secrets["custom_token"],
                                                     user_id="banned"), status=400)
    assert response.json["reason"] == "user_disabled"


def _users(db, app) -> int:
    return db.scalar(select(func.count()).select_from(EndUser).where(EndUser.app_id == app.id))
