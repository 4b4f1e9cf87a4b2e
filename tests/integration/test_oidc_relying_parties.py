"""Bridgekeeper as an OpenID Provider, proved with relying-party libraries
nobody here wrote (issue #16): openid-client (Node) as a public client and
Authlib (Python) as a confidential one, each signing alice in at the Python
example tenant endpoint through a live server. The browser library
(oidc-client-ts) has its own module, tests/browser/test_oidc_client_ts.py.

The libraries do their own checks — discovery's issuer, RFC 9207's ``iss``,
state, PKCE, the ID token's signature, ``iss``/``aud``/``exp``/``nonce``/
``at_hash`` — so a Bridgekeeper answer they refuse fails these tests with the
library's own words.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tests.live import free_port
from tests.oidc_rp import (
    ALICE_PROFILE,
    node_server,
    oidc_app,
    page_text,
    query_of,
    sign_in,
)
from tests.waiting import REQUEST_SECONDS

pytestmark = pytest.mark.integration

PROFILE_CLAIMS = {key: ALICE_PROFILE[key] for key in
                  ("name", "given_name", "family_name", "preferred_username", "locale")}
EMAIL_CLAIMS = {"email": ALICE_PROFILE["email"], "email_verified": True}


# --- openid-client (Node), a public client --------------------------------------------------

@pytest.fixture
def openid_client(app_settings):
    """The openid-client relying party (tests/oidc_clients/openid_client_rp.mjs) on
    a loopback port registered for the app; yields (app, rp_url, user agent)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with oidc_app(app_settings, origin) as oidc, \
            node_server("openid_client_rp.mjs", {"BK_ISSUER": oidc.issuer,
                                                 "BK_CLIENT_ID": oidc.client_id,
                                                 "BK_RP_PORT": str(port)}) as rp, \
            httpx.Client(timeout=REQUEST_SECONDS) as agent:
        assert rp == origin
        yield oidc, rp, agent


def rp_call(agent: httpx.Client, rp: str, path: str) -> dict:
    """POST to the relying party; its answer, asserting the library succeeded."""
    answer = agent.post(rp + path)
    assert answer.status_code == 200, f"{path}: {answer.text}"
    return answer.json()


def rp_refusal(agent: httpx.Client, rp: str, path: str) -> dict:
    """POST to the relying party where the library is expected to throw; what it said."""
    answer = agent.post(rp + path)
    assert answer.status_code == 502, f"{path} did not fail: {answer.text}"
    return answer.json()["error"]


def assert_invalid_token(refusal: dict) -> None:
    """openid-client threw a WWWAuthenticateChallengeError for a 401 whose
    challenge is Bearer error="invalid_token" (RFC 6750 §3.1)."""
    assert refusal["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE", refusal
    assert refusal["status"] == 401, refusal
    [challenge] = refusal["challenges"]
    assert challenge["scheme"] == "bearer", refusal
    assert challenge["parameters"]["error"] == "invalid_token", refusal


def log_in_with_openid_client(oidc, rp: str, agent: httpx.Client,
                              scope: str = "openid profile email offline_access") -> dict:
    answer = sign_in(agent, f"{rp}/login?scope={scope.replace(' ', '+')}", oidc.tenant)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_openid_client_signs_in_refreshes_reads_userinfo_and_logs_out(openid_client):
    oidc, rp, agent = openid_client
    login = log_in_with_openid_client(oidc, rp, agent)
    # openid-client already verified signature, iss, aud, exp, iat, nonce and the
    # authorization response's iss (RFC 9207); these are what it handed the app.
    claims = login["claims"]
    assert claims["iss"] == oidc.issuer
    assert claims["aud"] == oidc.client_id and claims["azp"] == oidc.client_id
    assert claims["nonce"] == login["nonce"]
    assert claims["sid"] and claims["at_hash"] and "ext" in claims["amr"]
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]
    assert {k: claims[k] for k in PROFILE_CLAIMS} == PROFILE_CLAIMS
    assert {k: claims[k] for k in EMAIL_CLAIMS} == EMAIL_CLAIMS
    assert login["token_type"].lower() == "bearer"
    assert login["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert login["has_refresh_token"]

    userinfo = rp_call(agent, rp, "/userinfo")  # the library checks sub against the ID token
    assert userinfo["sub"] == claims["sub"]
    assert {k: userinfo[k] for k in PROFILE_CLAIMS} == PROFILE_CLAIMS
    assert {k: userinfo[k] for k in EMAIL_CLAIMS} == EMAIL_CLAIMS
    assert "custom" not in userinfo  # oidc_custom_claim is off

    refreshed = rp_call(agent, rp, "/refresh")
    again = refreshed["claims"]
    assert refreshed["rotated"]
    assert again["sub"] == claims["sub"] and again["sid"] == claims["sid"]
    assert again["auth_time"] == claims["auth_time"] and again["amr"] == claims["amr"]
    assert "nonce" not in again
    assert refreshed["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert rp_call(agent, rp, "/userinfo")["sub"] == claims["sub"]  # the new access token

    # RP-initiated logout: openid-client builds the URL, the user agent follows it.
    logout_to = f"{rp}/signed-out"
    back = sign_in(agent, f"{rp}/logout?post_logout_redirect_uri={logout_to}", oidc.tenant)
    assert back.status_code == 200 and back.json() == {"state_matches": True}
    # end-session revoked the session: openid-client reads the Bearer challenge.
    assert_invalid_token(rp_refusal(agent, rp, "/userinfo"))


def test_openid_client_revocation_ends_the_session(openid_client):
    oidc, rp, agent = openid_client
    login = log_in_with_openid_client(oidc, rp, agent)
    assert rp_call(agent, rp, "/userinfo")["sub"] == login["claims"]["sub"]
    assert rp_call(agent, rp, "/revoke") == {"revoked": True}
    # The access token of the revoked session fails at UserInfo, through the library…
    assert_invalid_token(rp_refusal(agent, rp, "/userinfo"))
    # …and the refresh token is dead too.
    refresh = rp_refusal(agent, rp, "/refresh")
    assert refresh["error"] == "invalid_grant", refresh


def test_end_session_to_an_unlisted_uri_redirects_nowhere(openid_client):
    oidc, rp, agent = openid_client
    log_in_with_openid_client(oidc, rp, agent)
    unlisted = f"{rp}/elsewhere"
    answer = sign_in(agent, f"{rp}/logout?post_logout_redirect_uri={unlisted}", oidc.tenant)
    # The end-session endpoint answers its own page instead of sending the user on.
    assert answer.status_code == 200, answer.text
    assert str(answer.url).startswith(f"{oidc.issuer}/end-session?")
    assert "Location" not in answer.headers
    words = " ".join(page_text(answer).split())
    assert "You are signed out" in words
    assert "is not one Live app has registered, so you were not sent back" in words
    # The hint was good, so the session did end (only the redirect is refused).
    assert_invalid_token(rp_refusal(agent, rp, "/userinfo"))


# --- Authlib (Python), a confidential client --------------------------------------------------

AUTHLIB_ORIGIN = "http://127.0.0.1:8765"  # Authlib runs in this process: nothing listens there
AUTHLIB_REDIRECT = AUTHLIB_ORIGIN + "/callback"


def verify_id_token(id_token: str, jwks: dict, metadata: dict, client_id: str, nonce: str,
                    access_token: str) -> CodeIDToken:
    """As Authlib's own OpenID client does it (OpenIDMixin.parse_id_token): joserfc
    checks the signature, authlib.oidc.core.CodeIDToken the claims."""
    token = jose_jwt.decode(id_token, KeySet.import_key_set(jwks),
                            registry=JWSRegistry(
                                algorithms=metadata["id_token_signing_alg_values_supported"]))
    claims = CodeIDToken(token.claims, token.header,
                         {"iss": {"essential": True, "values": [metadata["issuer"]]}},
                         {"nonce": nonce, "client_id": client_id, "access_token": access_token})
    claims.validate(now=int(time.time()))
    return claims


def test_authlib_confidential_client_with_client_secret_basic(app_settings):
    with oidc_app(app_settings, AUTHLIB_ORIGIN, client_type="confidential") as oidc, \
            httpx.Client(timeout=REQUEST_SECONDS) as agent:
        secret = oidc.secrets["client_secret"]  # shown once, at creation
        metadata = httpx.get(f"{oidc.issuer}/.well-known/openid-configuration").json()
        assert metadata["issuer"] == oidc.issuer
        assert "client_secret_basic" in metadata["token_endpoint_auth_methods_supported"]
        client = OAuth2Session(client_id=oidc.client_id, client_secret=secret,
                              token_endpoint_auth_method="client_secret_basic",
                              scope="openid profile email", redirect_uri=AUTHLIB_REDIRECT,
                              code_challenge_method="S256", default_timeout=REQUEST_SECONDS)
        verifier = uuid.uuid4().hex + uuid.uuid4().hex
        nonce = uuid.uuid4().hex
        url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                     code_verifier=verifier, nonce=nonce)
        callback = sign_in(agent, url, oidc.tenant, stop_at=AUTHLIB_REDIRECT)
        assert query_of(callback)["iss"] == oidc.issuer  # RFC 9207
        token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                                   state=state, code_verifier=verifier)
        assert token["scope"].split() == ["openid", "profile", "email"]

        jwks = httpx.get(metadata["jwks_uri"]).json()
        claims = verify_id_token(token["id_token"], jwks, metadata, oidc.client_id, nonce,
                                 token["access_token"])
        assert claims["aud"] == oidc.client_id and claims["nonce"] == nonce
        assert {k: claims[k] for k in PROFILE_CLAIMS} == PROFILE_CLAIMS

        userinfo = client.get(metadata["userinfo_endpoint"])
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["sub"] == claims["sub"]
        assert {k: userinfo.json()[k] for k in EMAIL_CLAIMS} == EMAIL_CLAIMS

        # Introspection (confidential clients only), authenticated the same way.
        live = client.introspect_token(metadata["introspection_endpoint"],
                                       token=token["access_token"])
        assert live.status_code == 200, live.text
        assert live.json()["active"] is True and live.json()["client_id"] == oidc.client_id
        assert live.json()["sid"] == claims["sid"]

        revoked = client.revoke_token(metadata["revocation_endpoint"],
                                      token=token["refresh_token"],
                                      token_type_hint="refresh_token")
        assert revoked.status_code == 200, revoked.text
        after = client.get(metadata["userinfo_endpoint"])
        assert after.status_code == 401
        assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]
        dead = client.introspect_token(metadata["introspection_endpoint"],
                                       token=token["access_token"])
        assert dead.json() == {"active": False}

