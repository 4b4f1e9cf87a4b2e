"""Recoverable expired logins (issue #10, DESIGN §9.1): every page shown for a
state failure links to the app's ``restart_url`` when it is set ("start the
login again"), and is a plain dead end otherwise — callback and hosted form."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import make_app
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of

RESTART = "https://game.example.com/start?from=expired"
LINK = "Start the login again"


@dataclass
class Ctx:
    webapp: object
    app: object
    other: object
    registry: object
    accept: str

    def callback(self, state: str | None):
        params = {"token": "x"} if state is None else {"state": state, "token": "x"}
        return self.webapp.get(f"/v1/apps/{self.app.app_id}/callback", params, status=400,
                               headers={"Accept": self.accept})

    def hosted_post(self, state: str):
        return self.webapp.post(f"/v1/apps/{self.app.app_id}/login", {"state": state, "id": "a"},
                                status=400, headers={"Accept": self.accept})

    def login(self, app=None) -> Login:
        app = app or self.app
        return Login(self.webapp, app.app_id, self.app.plain_secrets["custom_auth"])


def _expired(ctx: Ctx):
    login = ctx.login()
    client, keys = ctx.registry["saas.redis"], ctx.registry["saas.redis_keys"]
    client.delete(keys.app(ctx.app.app_id, "state", login.state))  # its TTL ran out
    return ctx.callback(login.state)


def _replayed(ctx: Ctx):
    login = ctx.login()
    assert "code" in query_of(login.finish().location)
    return ctx.callback(login.state)


def _not_bound(ctx: Ctx):
    login = ctx.login()
    ctx.webapp.reset()
    return ctx.callback(login.state)


def _host_mismatch(ctx: Ctx):
    """Started on 127.0.0.1, back at the public URL's host: the cookie stayed behind."""
    started = ctx.webapp.get(f"/v1/apps/{ctx.app.app_id}/authorize", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]},
        extra_environ={"HTTP_HOST": "127.0.0.1:6543"})
    return ctx.callback(query_of(started.location)["state"])


def _hosted_not_bound(ctx: Ctx):
    form = ctx.webapp.get(f"/v1/apps/{ctx.app.app_id}/login", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]}).forms[0]
    ctx.webapp.reset()
    return ctx.hosted_post(form["state"].value)


CASES = [
    ("callback state_missing", lambda ctx: ctx.callback(None), "state_missing"),
    ("callback junk state", lambda ctx: ctx.callback("junk"), "state_unknown"),
    ("callback unknown state", lambda ctx: ctx.callback(f"{ctx.app.app_id}." + "A" * 32),
     "state_unknown"),
    ("callback expired state", _expired, "state_unknown"),
    ("callback replayed state", _replayed, "state_replayed"),
    ("callback state not bound", _not_bound, "state_not_bound"),
    ("callback on another host", _host_mismatch, "host_mismatch"),
    ("callback state of another app", lambda ctx: ctx.callback(ctx.login(ctx.other).state),
     "state_app_mismatch"),
    ("hosted form state not bound", _hosted_not_bound, "state_not_bound"),
    ("hosted form expired state",
     lambda ctx: ctx.hosted_post(f"{ctx.app.app_id}." + "B" * 32), "state_unknown"),
]


@pytest.fixture
def apps(login_app, db, secret_box):
    login_app.backchannel = True
    other, _ = make_app(db, secret_box, login_app.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                        custom_auth_endpoint="https://tenant.example.com/auth")
    db.commit()
    return login_app, other


@pytest.mark.parametrize("media", ["text/html", "application/json"])
@pytest.mark.parametrize(("case", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("restart", [RESTART, None], ids=["restart_url", "dead end"])
def test_state_failure_pages_link_the_restart_url(webapp, db, registry, apps, case, reason,
                                                  media, restart):
    app, other = apps
    app.restart_url = restart
    db.commit()
    registry["saas.app_cache"].store(app)
    page = case(Ctx(webapp, app, other, registry, media))
    if media == "application/json":
        assert page.json["reason"] == reason
        assert page.json.get("restart_url") == restart
        return
    assert page.content_type == "text/html" and reason in page.text
    links = [a for a in page.html.find_all("a") if a.get_text(strip=True) == LINK]
    if restart:
        assert [a["href"] for a in links] == [RESTART]
    else:
        assert links == [] and "restart" not in page.text.lower()
