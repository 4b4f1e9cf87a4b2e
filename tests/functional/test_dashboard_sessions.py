"""Dashboard sessions: an idle timeout that slides and an absolute lifetime that
does not; the cookie is ``__Host-bk_session`` over https, ``bk_session`` on a
development http server."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import webtest
from sqlalchemy.orm import sessionmaker

from saas.config import configure
from saas.crypto import hash_token
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import sign_in

WEEK = 7 * 24 * 3600


def _session_key(registry, cookie: str) -> str:
    return registry["saas.redis_keys"].global_("session", hash_token(cookie))


def _age(registry, cookie: str, seconds: float) -> None:
    """Make the stored session look as if it began ``seconds`` ago."""
    client, key = registry["saas.redis"], _session_key(registry, cookie)
    data = json.loads(client.get(key))
    data["_created"] = time.time() - seconds
    client.set(key, json.dumps(data), keepttl=True)


def test_a_session_ends_after_its_absolute_lifetime_however_busy(webapp, db, passwords,
                                                                   registry):
    member = make_member(db, passwords)
    db.commit()
    sign_in(webapp, member.email)
    cookie = webapp.cookies["bk_session"]
    _age(registry, cookie, WEEK - 60)  # six days and 23:59 of constant use
    webapp.get("/dashboard/apps", status=200)
    _age(registry, cookie, WEEK + 1)
    gone = webapp.get("/dashboard/apps", status=303)
    assert "/dashboard/signin" in gone.location
    assert registry["saas.redis"].get(_session_key(registry, cookie)) is None


def test_the_store_forgets_a_session_by_its_absolute_end(webapp, db, passwords, registry):
    member = make_member(db, passwords)
    db.commit()
    sign_in(webapp, member.email)
    cookie = webapp.cookies["bk_session"]
    _age(registry, cookie, WEEK - 100)
    webapp.get("/dashboard/apps", status=200)
    ttl = registry["saas.redis"].ttl(_session_key(registry, cookie))
    assert 0 < ttl <= 100


def test_signing_in_starts_the_absolute_clock(webapp, db, passwords, registry):
    member = make_member(db, passwords)
    db.commit()
    webapp.reset()
    webapp.get("/dashboard/signin")  # an anonymous session (its CSRF token) …
    _age(registry, webapp.cookies["bk_session"], WEEK - 5)  # … from long ago
    form = webapp.get("/dashboard/signin").forms[0]
    form["email"], form["password"] = member.email, DEFAULT_PASSWORD
    form.submit(status=303)
    ttl = registry["saas.redis"].ttl(_session_key(registry, webapp.cookies["bk_session"]))
    assert ttl > 3600


@pytest.fixture
def https_app(app_settings, db_connection, redis_client):
    prefix = f"{app_settings['saas.redis_prefix']}:https-{uuid.uuid4().hex[:8]}"
    app = configure(dict(app_settings, **{"saas.redis_prefix": prefix,
                                          "saas.secure_cookies": "true"})).make_wsgi_app()
    app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test",
                                              "wsgi.url_scheme": "https"})
    app.registry["saas.db_engine"].dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def test_over_https_the_cookie_is_host_prefixed(https_app, db, passwords):
    member = make_member(db, passwords)
    db.commit()
    page = https_app.get("/dashboard/signin")
    set_cookie = page.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-bk_session=")
    assert "secure" in set_cookie.lower() and "Path=/" in set_cookie
    assert "domain" not in set_cookie.lower()
    form = page.forms[0]
    form["email"], form["password"] = member.email, DEFAULT_PASSWORD
    form.submit(status=303)
    assert "bk_session" not in https_app.cookies
    assert https_app.get("/dashboard/apps").status_int == 200
