"""Web processes whose clocks disagree by ±2 minutes (``saas.clock_offset``).

A login is started on one process and finished on the other; the tenant signs
its verdict with the true clock. What the state, code and token checks do:

* everything that lives in Redis expires by Redis's clock, so the state and
  code survive the hop in either direction;
* the tenant token is judged by the finishing process's clock with the 30 s
  leeway of DESIGN §4.2: a process 120 s behind sees ``iat`` 120 s in the
  future (``token_not_yet_valid``), one 120 s ahead sees a 60 s token expired
  (``token_expired``). Skew beyond the leeway between the tenant and our web
  tier fails logins; that is the rule working, not a bug to paper over.
"""

from __future__ import annotations

import time

import pytest
import webtest
from sqlalchemy.orm import sessionmaker

from saas.config import configure
from tests.flows import Login, query_of, tenant_token


@pytest.fixture
def skewed(app_settings, db_connection):
    """Factory: a web app whose clock is ``offset`` seconds off, sharing the
    fixtures' database transaction and Redis prefix."""
    made = []

    def make(offset: int) -> webtest.TestApp:
        app = configure(dict(app_settings, **{"saas.clock_offset": str(offset)})).make_wsgi_app()
        app.registry["saas.db_sessionmaker"] = sessionmaker(
            bind=db_connection, join_transaction_mode="create_savepoint",
            expire_on_commit=False)
        made.append(app)
        return webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test"})

    yield make
    for app in made:
        app.registry["saas.db_engine"].dispose()


def hop(source: webtest.TestApp, target: webtest.TestApp) -> None:
    """The browser carries its cookies from one process to the other."""
    for name, value in source.cookies.items():
        target.set_cookie(name, value)


def finish(login: Login, target, token: str, status=302):
    hop(login.webapp, target)
    return target.get(f"/v1/apps/{login.app_id}/callback",
                      params={"flow": "custom", "state": login.state, "token": token},
                      status=status)


PAIRS = [(120, -120), (-120, 120)]


@pytest.mark.parametrize(("start", "end"), PAIRS, ids=["ahead-then-behind", "behind-then-ahead"])
def test_state_and_code_survive_the_hop(skewed, login_app, start, end):
    """With a tenant whose clock agrees with the finishing process, the login
    and the code exchange work across ±2 min of web-tier skew."""
    first, second = skewed(start), skewed(end)
    secret = login_app.plain_secrets["custom_auth"]
    login = Login(first, login_app.app_id, secret)
    now = int(time.time()) + end  # the tenant's clock agrees with the finishing process
    token = tenant_token(secret, state=login.state, iat=now, exp=now + 60)
    done = finish(login, second, token)
    code = query_of(done.location)["code"]
    # Exchanged on the first process again: the code's 60 s lives in Redis.
    login.webapp = first
    tokens = login.exchange(code).json
    assert tokens["access_token"] and tokens["refresh_token"]


@pytest.mark.parametrize(("start", "end", "reason"), [
    (120, -120, "token_not_yet_valid"), (-120, 120, "token_expired")],
    ids=["finished-behind", "finished-ahead"])
def test_a_true_clock_tenant_token_against_a_skewed_process(skewed, login_app, start, end,
                                                            reason):
    first, second = skewed(start), skewed(end)
    secret = login_app.plain_secrets["custom_auth"]
    login = Login(first, login_app.app_id, secret)
    token = tenant_token(secret, state=login.state)  # iat = true now, exp = iat + 60
    done = finish(login, second, token)
    error = query_of(done.location)
    assert "code" not in error and error["error"] == "invalid_request"
    assert error["reason"] == reason


def test_a_true_clock_token_within_the_leeway_passes_both_ways(skewed, login_app):
    """Skew up to the leeway (±25 s here) is absorbed in both directions."""
    secret = login_app.plain_secrets["custom_auth"]
    for start, end in ((25, -25), (-25, 25)):
        first, second = skewed(start), skewed(end)
        login = Login(first, login_app.app_id, secret)
        done = finish(login, second, tenant_token(secret, state=login.state))
        assert "code" in query_of(done.location)
