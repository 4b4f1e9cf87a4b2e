"""Recoverable expired logins (issue #10, DESIGN §9.1): every page shown for a
state failure links to the app's ``restart_url`` when it is set ("start the
login again"), else to the origin of its first web redirect URI, and only an
app with neither leaves the user to go back by hand — callback and hosted
form. The codes for support sit in a collapsed block."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import make_app
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of

RESTART = "https://game.example.com/start?from=expired"
LINK = "Start the login again"
NATIVE = "myapp://cb"


@dataclass
class Ctx:
    webapp: object
    app: object
    other: object
    registry: object
    accept: str
    redirect_uri: str

    def callback(self, state: str | None):
        params = {"token": "x"} if state is None else {"state": state, "token": "x"}
        return self.webapp.get(f"/v1/apps/{self.app.app_id}/callback", params, status=400,
                               headers={"Accept": self.accept})

    def hosted_post(self, state: str):
        return self.webapp.post(f"/v1/apps/{self.app.app_id}/login", {"state": state, "id": "a"},
                                status=400, headers={"Accept": self.accept})

    def login(self, app=None) -> Login:
        if app is not None:  # the other app allows the usual client only
            return Login(self.webapp, app.app_id, self.app.plain_secrets["custom_auth"])
        return Login(self.webapp, self.app.app_id, self.app.plain_secrets["custom_auth"],
                     redirect_uri=self.redirect_uri)


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
        "redirect_uri": ctx.redirect_uri, "code_challenge": pkce_pair()[1]},
        extra_environ={"HTTP_HOST": "127.0.0.1:6543"})
    return ctx.callback(query_of(started.location)["state"])


def _hosted_not_bound(ctx: Ctx):
    form = ctx.webapp.get(f"/v1/apps/{ctx.app.app_id}/login", {
        "redirect_uri": ctx.redirect_uri, "code_challenge": pkce_pair()[1]}).forms[0]
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


# (restart_url, redirect URIs, the link the page shows)
SETUPS = {
    "restart_url": (RESTART, [CLIENT_REDIRECT, NATIVE], RESTART),
    "first web redirect URI's origin": (None, [NATIVE, CLIENT_REDIRECT, "http://127.0.0.1/loop"],
                                        "https://app.example.com/"),
    "dead end": (None, [NATIVE], None),
}


@pytest.mark.parametrize("media", ["text/html", "application/json"])
@pytest.mark.parametrize(("case", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("setup", list(SETUPS))
def test_state_failure_pages_link_a_way_to_start_again(webapp, db, registry, apps, case, reason,
                                                       media, setup):
    app, other = apps
    app.restart_url, app.redirect_uris, link = SETUPS[setup]
    db.commit()
    registry["saas.app_cache"].store(app)
    page = case(Ctx(webapp, app, other, registry, media, app.redirect_uris[0]))
    if media == "application/json":
        assert page.json["reason"] == reason
        assert page.json.get("restart_url") == link
        return
    assert page.content_type == "text/html"
    links = [a for a in page.html.find_all("a") if a.get_text(strip=True) == LINK]
    if link:
        assert [a["href"] for a in links] == [link]
    else:
        assert links == []
        assert "Go back to the app you came from" in page.text
    # Status, reason and request id are there for support, folded away.
    details = page.html.select_one("details.dev-details")
    assert details is not None and not details.has_attr("open")
    facts = details.get_text(" ", strip=True)
    assert "400" in facts and reason in facts
    assert page.headers["X-Request-ID"] in facts
