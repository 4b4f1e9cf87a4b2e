"""The token debugger (issue #10): for every failing token of the flow tests
(tests/functional/test_redirect_flow.py, test_custom_token.py) the debugger
page gives the live endpoint's ``reason``, and it consumes nothing.

Each case asks the debugger first and the live endpoint second, with the same
token and state: had the debugger consumed the state or the token, the live
answer would be ``state_replayed`` / ``token_replayed`` instead. A valid token
shown to the debugger still logs in afterwards, and Redis (the app's keys and
the event stream) and PostgreSQL are unchanged by the debugger.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from markupsafe import escape

from saas.apps.cache import config_of
from saas.flows.login import user_id_for
from saas.users.disabled import set_disabled
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT, Login, callback, query_of, tenant_token
from tests.functional.dashboard_helpers import csrf_token, sign_in, snapshot
from tests.functional.test_custom_token import skygear_token


def at(offset: int, shape=lambda t: t):
    """A time claim made when the token is made (the run may take minutes)."""
    return lambda: shape(int(time.time()) + offset)


def resolve(claims: dict) -> dict:
    return {k: v() if callable(v) else v for k, v in claims.items()}


@dataclass
class Ctx:
    webapp: object
    db: object
    registry: object
    app: object
    secrets: dict
    other_app: object

    @property
    def auth_secret(self) -> str:
        return self.secrets["custom_auth"]

    def store(self) -> None:
        self.db.commit()
        self.registry["saas.app_cache"].store(self.app)

    def start(self) -> Login:
        return Login(self.webapp, self.app.app_id, self.auth_secret)

    def disable(self, external_id: str) -> None:
        config = config_of(self.app)
        set_disabled(self.registry["saas.redis"], self.registry["saas.redis_keys"],
                     self.app.app_id, user_id_for(config, external_id), True)


@pytest.fixture
def ctx(db, passwords, secret_box, webapp, registry) -> Ctx:
    member = make_member(db, passwords)
    app, secrets = make_app(db, secret_box, member.tenant_id,
                            custom_auth_endpoint="https://tenant.example.com/auth?v=1",
                            redirect_uris=[CLIENT_REDIRECT], custom_token_enabled=True)
    other, _ = make_app(db, secret_box, member.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                        custom_auth_endpoint="https://tenant.example.com/auth")
    db.commit()
    sign_in(webapp, member.email)
    return Ctx(webapp, db, registry, app, secrets, other)


def debug(ctx: Ctx, kind: str, token: str, state: str = "", status: int = 200) -> str | None:
    """The debugger page's verdict: the reason, or None when it would accept."""
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": kind, "token": token, "state": state,
    }, status=status)
    assert page.headers["Cache-Control"] == "no-store"
    found = re.search(r'id="verdict-reason">([a-z_]+)<', page.text)
    if found is None:
        assert 'id="verdict-user"' in page.text
        return None
    # The first failing check of the list is the verdict's.
    first = re.search(r'class="check-fail">\s*<th scope="row">[^<]*</th>\s*<td[^>]*>.*?</td>\s*'
                      r'<td[^>]*><code>([a-z_]+)</code>', page.text, re.S)
    assert first is not None and first.group(1) == found.group(1), page.text
    return found.group(1)


def live_callback(ctx: Ctx, state: str | None, token: str) -> str | None:
    """The callback's reason: from the client redirect, or the 400/413 page."""
    params = {"token": token}
    if state is not None:
        params["state"] = state
    response = ctx.webapp.get(f"/v1/apps/{ctx.app.app_id}/callback", params,
                              headers={"Accept": "application/json"}, status="*")
    if response.status_int in (400, 413):
        return response.json["reason"]
    back = query_of(response.location)
    return None if "code" in back else back["reason"]


# -- tenant tokens: (name, setup → (state, token), expected reason) --------------------


def _claims(**claims) -> Callable[[Ctx], tuple[str, str]]:
    def make(ctx: Ctx) -> tuple[str, str]:
        login = ctx.start()
        return login.state, tenant_token(ctx.auth_secret,
                                         **resolve({"state": login.state, **claims}))
    return make


def _bad_signature(ctx):
    login = ctx.start()
    return login.state, tenant_token("not-the-secret", state=login.state)


def _empty(ctx):
    return ctx.start().state, ""


def _reflected(ctx):
    login = ctx.start()
    return login.state, login.tenant_params["token"]


def _replayed(ctx):
    token = tenant_token(ctx.auth_secret)
    first = ctx.start()
    assert "code" in query_of(callback(ctx.webapp, ctx.app.app_id, state=first.state,
                                       token=token).location)
    return ctx.start().state, token


def _unbound_required(ctx):
    ctx.app.require_bound_tokens = True
    ctx.store()
    return ctx.start().state, tenant_token(ctx.auth_secret)


def _none_alg(ctx):
    login = ctx.start()
    body = tenant_token(ctx.auth_secret, state=login.state).split(".")[1]
    return login.state, "eyJhbGciOiJub25lIn0." + body + "."


def _malformed(ctx):
    return ctx.start().state, "not.a-jwt"


def _disabled(ctx):
    ctx.disable("banned")
    login = ctx.start()
    return login.state, tenant_token(ctx.auth_secret, user_id="banned", state=login.state)


def _rotated(grace: dt.timedelta):
    def make(ctx):
        secret = ctx.app.secret("custom_auth")
        secret.previous_ciphertext = secret.current_ciphertext
        box = ctx.registry["saas.secret_box"]
        secret.current_ciphertext = box.encrypt("a-brand-new-secret-value-0123456789")
        secret.previous_valid_until = dt.datetime.now(dt.UTC) + grace
        ctx.store()
        login = ctx.start()
        return login.state, tenant_token(ctx.auth_secret, state=login.state)
    return make


def _oversized(ctx):
    return ctx.start().state, "a" * 7000


def _state_unknown(ctx):
    return f"{ctx.app.app_id}." + "A" * 32, tenant_token(ctx.auth_secret)


def _state_junk(ctx):
    return "junk", tenant_token(ctx.auth_secret)


def _state_replayed(ctx):
    login = ctx.start()
    login.finish()
    return login.state, tenant_token(ctx.auth_secret, state=login.state)


def _state_of_other_app(ctx):
    login = Login(ctx.webapp, ctx.other_app.app_id, "unused")
    return login.state, tenant_token(ctx.auth_secret, state=login.state)


TENANT_CASES = [
    ("user_id missing", _claims(user_id=None), "user_id_missing"),
    ("user_id empty", _claims(user_id=""), "user_id_invalid"),
    ("user_id too long", _claims(user_id="x" * 256), "user_id_invalid"),
    ("expired", _claims(exp=at(-120)), "token_expired"),
    ("iat in the future", _claims(iat=at(300)), "token_not_yet_valid"),
    ("nbf in the future", _claims(nbf=at(300)), "token_not_yet_valid"),
    ("too old", _claims(iat=at(-700), exp=at(60)), "token_too_old"),
    ("lifetime too long", _claims(exp=at(90000)), "token_lifetime_too_long"),
    ("exp as a string", _claims(exp=at(60, str)), "claims_invalid"),
    ("exp in milliseconds", _claims(exp=at(60, lambda t: t * 1000)), "claims_invalid"),
    ("state claim mismatch", _claims(state="someone-elses-state"), "claims_invalid"),
    ("custom not an object", _claims(custom=["not", "an", "object"]), "claims_invalid"),
    ("bad signature", _bad_signature, "token_bad_signature"),
    ("empty token", _empty, "token_missing"),
    ("our request token reflected", _reflected, "claims_invalid"),
    ("replayed token", _replayed, "token_replayed"),
    ("unbound under require_bound_tokens", _unbound_required, "claims_invalid"),
    ("alg none", _none_alg, "token_alg_not_allowed"),
    ("malformed", _malformed, "token_malformed"),
    ("disabled user", _disabled, "user_disabled"),
    ("previous secret after its grace", _rotated(-dt.timedelta(seconds=1)),
     "token_bad_signature"),
    ("oversized", _oversized, "payload_too_large"),
    ("state unknown", _state_unknown, "state_unknown"),
    ("state not ours at all", _state_junk, "state_unknown"),
    ("state replayed", _state_replayed, "state_replayed"),
    ("state of another app", _state_of_other_app, "state_app_mismatch"),
]


def app_keys(ctx: Ctx) -> dict[bytes, bytes | None]:
    """The app's Redis keys and values (minus rate-limit counters), and the stream length."""
    client, keys = ctx.registry["saas.redis"], ctx.registry["saas.redis_keys"]
    found = {key: client.dump(key) for key in client.scan_iter(
        match=keys.app(ctx.app.app_id, "*"), count=1000) if b":rl:" not in key}
    found[b"stream-length"] = client.xlen(
        ctx.registry["saas.event_streams"].key_for_app(ctx.app.app_id))
    return found


@pytest.mark.parametrize(("make", "reason"), [c[1:] for c in TENANT_CASES],
                         ids=[c[0] for c in TENANT_CASES])
def test_tenant_token_reason_matches_the_callback(ctx, db, make, reason):
    state, token = make(ctx)
    redis_before, rows_before = app_keys(ctx), snapshot(db)
    assert debug(ctx, "tenant", token, state) == reason
    assert app_keys(ctx) == redis_before and snapshot(db) == rows_before
    # The live endpoint afterwards: the state and the token were left as they were.
    assert live_callback(ctx, state, token) == reason


@pytest.mark.parametrize("grace", [None, dt.timedelta(hours=1)], ids=["current", "previous"])
def test_a_valid_token_is_accepted_and_still_logs_in_afterwards(ctx, db, grace):
    state, token = (_rotated(grace) if grace else _claims(user_id="carol"))(ctx)
    redis_before, rows_before = app_keys(ctx), snapshot(db)
    for _ in range(2):  # twice: still nothing consumed
        assert debug(ctx, "tenant", token, state) is None
    assert app_keys(ctx) == redis_before and snapshot(db) == rows_before
    assert live_callback(ctx, state, token) is None  # a code: the login went through
    # Now the live path has consumed both; the debugger says so, as the service would.
    assert debug(ctx, "tenant", token, state) == "state_replayed"
    assert debug(ctx, "tenant", token) == "token_replayed"


def test_which_secret_verified_and_the_decoded_token_are_shown(ctx):
    state, token = _rotated(dt.timedelta(hours=1))(ctx)
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": "tenant", "token": token, "state": state})
    assert "verifies with the previous custom-auth secret (in its grace period" in page.text
    assert str(escape('"user_id": "user-1"')) in page.text
    assert "a-brand-new-secret" not in page.text and ctx.auth_secret not in page.text


def test_a_token_signed_with_the_other_secret_says_so(ctx):
    token = skygear_token(ctx.secrets["custom_auth"])
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": "custom", "token": token})
    assert "it was signed with the current custom-auth secret" in page.text


def test_claims_are_escaped(ctx):
    login = ctx.start()
    token = tenant_token(ctx.auth_secret, user_id="<script>alert(1)</script>", state=login.state)
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": "tenant", "token": token,
        "state": login.state})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- custom tokens ------------------------------------------------------------------------


def _sky(**overrides) -> Callable[[Ctx], str]:
    def make(ctx: Ctx) -> str:
        now = int(time.time())
        claims = {k: now + v if k in ("iat", "exp") and v is not None else v
                  for k, v in overrides.items()}
        return skygear_token(ctx.secrets["custom_token"], user_id="bad-one", **claims)
    return make


def _sky_replayed(ctx):
    token = skygear_token(ctx.secrets["custom_token"], user_id="once")
    live_custom(ctx, token)
    return token


def _sky_jti_replayed(ctx):
    live_custom(ctx, skygear_token(ctx.secrets["custom_token"], user_id="jti", jti="j-1"))
    return skygear_token(ctx.secrets["custom_token"], user_id="jti", jti="j-1",
                         exp=int(time.time()) + 1800)


def _sky_disabled_feature(ctx):
    ctx.app.custom_token_enabled = False
    ctx.store()
    return skygear_token(ctx.secrets["custom_token"])


def _sky_disabled_user(ctx):
    ctx.disable("banned")
    return skygear_token(ctx.secrets["custom_token"], user_id="banned")


CUSTOM_CASES = [
    ("sub too long", _sky(sub="x" * 37), "user_id_invalid"),
    ("lifetime over an hour", _sky(iat=0, exp=3601), "token_lifetime_too_long"),
    ("expired", _sky(iat=-7200, exp=-3600), "token_expired"),
    ("not yet valid", _sky(iat=300, exp=600), "token_not_yet_valid"),
    ("iat missing", _sky(iat=None), "claims_invalid"),
    ("skyprofile not an object", _sky(skyprofile="not an object"), "claims_invalid"),
    ("exp before iat", _sky(iat=0, exp=-10), "claims_invalid"),
    ("jti not a string", _sky(jti=7), "claims_invalid"),
    ("wrong secret", lambda ctx: skygear_token("some-other-secret-0123456789abcdef"),
     "token_bad_signature"),
    ("custom-auth secret", lambda ctx: skygear_token(ctx.secrets["custom_auth"]),
     "token_bad_signature"),
    ("alg none", lambda ctx: "eyJhbGciOiJub25lIn0." + skygear_token(
        ctx.secrets["custom_token"]).split(".")[1] + ".", "token_alg_not_allowed"),
    ("replayed", _sky_replayed, "token_replayed"),
    ("replayed by jti", _sky_jti_replayed, "token_replayed"),
    ("feature disabled", _sky_disabled_feature, "feature_disabled"),
    ("disabled user", _sky_disabled_user, "user_disabled"),
    ("empty", lambda ctx: "", "token_missing"),
]


def live_custom(ctx: Ctx, token: str) -> str | None:
    response = ctx.webapp.post_json(f"/v1/apps/{ctx.app.app_id}/login/custom-token",
                                    {"token": token}, status="*")
    return None if response.status_int == 200 else response.json["reason"]


@pytest.mark.parametrize(("make", "reason"), [c[1:] for c in CUSTOM_CASES],
                         ids=[c[0] for c in CUSTOM_CASES])
def test_custom_token_reason_matches_the_endpoint(ctx, db, make, reason):
    token = make(ctx)
    redis_before, rows_before = app_keys(ctx), snapshot(db)
    assert debug(ctx, "custom", token) == reason
    assert app_keys(ctx) == redis_before and snapshot(db) == rows_before
    assert live_custom(ctx, token) == reason


def test_a_valid_custom_token_still_logs_in_afterwards(ctx):
    token = skygear_token(ctx.secrets["custom_token"], user_id="dave")
    assert debug(ctx, "custom", token) is None
    assert debug(ctx, "custom", token) is None
    assert live_custom(ctx, token) is None
    assert debug(ctx, "custom", token) == "token_replayed"


# -- access ---------------------------------------------------------------------------------


def test_the_token_is_never_logged(ctx, caplog):
    token = tenant_token(ctx.auth_secret)
    with caplog.at_level("DEBUG"):
        debug(ctx, "tenant", token)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "token debugger used" in logged
    assert token not in logged and token.split(".")[2] not in logged


def test_csrf_role_and_tenant_isolation(ctx, db, passwords, secret_box, webapp):
    from saas.tenants.models import Role
    from tests.functional.dashboard_helpers import add_member

    path = f"/dashboard/apps/{ctx.app.app_id}/debugger"
    token = tenant_token(ctx.auth_secret)
    webapp.post(path, {"kind": "tenant", "token": token}, status=400)  # no CSRF token
    viewer = add_member(db, passwords, ctx.app.tenant_id, Role.VIEWER)
    stranger = make_member(db, passwords)
    db.commit()
    sign_in(webapp, viewer.email)
    page = webapp.get(path)
    assert "Only owners and admins" in page.text and not page.forms.get("debugger-form")
    webapp.post(path, {"csrf_token": csrf_token(webapp), "kind": "tenant", "token": token},
                status=403)
    sign_in(webapp, stranger.email)
    webapp.get(path, status=404)
    webapp.post(path, {"csrf_token": csrf_token(webapp), "kind": "tenant", "token": token},
                status=404)


def test_bad_kind_is_a_form_error(ctx):
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": "weird", "token": "x"}, status=400)
    assert "Choose the kind of token." in page.text


def test_decoding_of_an_unverifiable_token(ctx):
    token = jwt.encode({"user_id": "u", "exp": int(time.time()) + 60}, "wrong",
                       algorithm="HS256")
    page = ctx.webapp.post(f"/dashboard/apps/{ctx.app.app_id}/debugger", {
        "csrf_token": csrf_token(ctx.webapp), "kind": "tenant", "token": token})
    assert 'id="token-header"' in page.text and "HS256" in page.text
    assert "expires in" in page.text
