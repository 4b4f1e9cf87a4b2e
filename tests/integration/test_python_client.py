"""The Python client verifies our access tokens against the live JWKS, and
follows a signing-key rotation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bridgekeeper_verifier import AccessTokenVerifier, InvalidToken
from saas.apps.models import App, SigningKey
from saas.apps.signing_keys import new_signing_key
from saas.crypto import SecretBox
from saas.redis import Keys, redis_from_url
from tests.flows import CLIENT_REDIRECT, Login
from tests.live import committed_app, live_server

pytestmark = pytest.mark.integration


def _rotate_signing_key(settings, app) -> None:
    """Publish a new key and retire the old one (still published for its tokens)."""
    engine = create_engine(settings["sqlalchemy.url"])
    with Session(engine) as session:
        stored = session.get(App, app.id)
        now = dt.datetime.now(dt.UTC)
        for key in session.scalars(select(SigningKey).where(SigningKey.app_id == app.id)):
            key.retired_at = now
            key.published_until = now + dt.timedelta(hours=1)
        fresh = new_signing_key(SecretBox(settings["saas.master_key"]))
        fresh.app_id = stored.id
        fresh.created_at = now + dt.timedelta(seconds=1)
        session.add(fresh)
        session.commit()
    engine.dispose()
    redis_from_url(settings["redis.url"]).delete(
        Keys(settings["saas.redis_prefix"]).app(app.app_id, "config"))


def test_verifier_checks_tokens_and_follows_key_rotation(app_settings):
    import webtest

    from saas.config import configure

    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="https://tenant.example.com/auth") as (app, secrets), \
            live_server(app_settings) as base:
        web = webtest.TestApp(configure(dict(app_settings, **{
            "saas.public_base_url": base})).make_wsgi_app(),
            extra_environ={"HTTP_HOST": base.removeprefix("http://")})
        verifier = AccessTokenVerifier(base, app.app_id, refresh_cooldown=0)
        first = Login(web, app.app_id, secrets["custom_auth"]).tokens(user_id="u-1")
        claims = verifier.verify(first["access_token"])
        assert claims["ext"] == "u-1" and claims["sub"] == first["user"]["id"]

        with pytest.raises(InvalidToken):
            verifier.verify(first["access_token"][:-3] + "abc")
        with pytest.raises(InvalidToken):
            AccessTokenVerifier(base, "zzzzzzzz").verify(first["access_token"])

        _rotate_signing_key(app_settings, app)
        second = Login(web, app.app_id, secrets["custom_auth"]).tokens(user_id="u-2")
        assert verifier.verify(second["access_token"])["ext"] == "u-2"  # new kid: refetched
        assert verifier.verify(first["access_token"])["ext"] == "u-1"  # old key still published
