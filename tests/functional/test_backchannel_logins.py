"""The hosted sign-in form and the in-app form: logins over the back-channel
against a real tenant endpoint on loopback (the Python example)."""

from __future__ import annotations

import socket
import threading
import time

import jwt
import pytest

from saas.backchannel.client import TOTAL_DEADLINE
from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of
from tests.live import python_example, serve_wsgi


@pytest.fixture
def tenant(login_app, db, registry):
    """The app with the back-channel on, pointing at the Python example endpoint."""
    with serve_wsgi(python_example(login_app.plain_secrets["custom_auth"])) as base:
        login_app.backchannel = True
        login_app.custom_auth_endpoint = base + "/auth"
        db.commit()
        registry["saas.app_cache"].store(login_app)
        yield login_app


def point_at(app, db, registry, endpoint: str) -> None:
    app.custom_auth_endpoint = endpoint
    db.commit()
    registry["saas.app_cache"].store(app)


def inapp(webapp, app, data, status):
    return webapp.post_json(f"/v1/apps/{app.app_id}/login/custom", {"data": data},
                            status=status)


def test_inapp_login_returns_tokens_and_me_reads_the_data(webapp, tenant):
    tokens = inapp(webapp, tenant, {"id": "alice", "passphrase": "wonderland"}, 200).json
    assert tokens["user"]["external_id"] == "1001"
    me = webapp.get(f"/v1/apps/{tenant.app_id}/me",
                    headers={"Authorization": "Bearer " + tokens["access_token"]}).json
    assert me["custom"] == {"plan": "pro", "lang": "en"}


def test_inapp_refusal_is_401_access_denied_at_once(webapp, tenant):
    started = time.monotonic()
    refused = inapp(webapp, tenant, {"id": "alice", "passphrase": "nope"}, 401)
    assert time.monotonic() - started < TOTAL_DEADLINE  # answered, not timed out
    assert refused.json["error"] == "access_denied"
    assert refused.json["reason"] == "tenant_denied"


def test_inapp_against_an_endpoint_answering_401(webapp, tenant, db, registry):
    def answer_401(environ, start_response):
        start_response("401 Unauthorized", [("Content-Type", "text/plain")])
        return [b"jwt error"]

    with serve_wsgi(answer_401) as base:
        point_at(tenant, db, registry, base + "/auth")
        started = time.monotonic()
        response = inapp(webapp, tenant, {"id": "alice"}, 401)
        assert time.monotonic() - started < TOTAL_DEADLINE
    assert response.json["reason"] == "tenant_denied"


def test_inapp_against_a_hanging_endpoint_is_504_within_the_deadline(webapp, tenant, db,
                                                                     registry):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        point_at(tenant, db, registry, f"http://127.0.0.1:{listener.getsockname()[1]}/auth")
        started = time.monotonic()
        response = inapp(webapp, tenant, {"id": "alice"}, 504)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert response.json["reason"] == "tenant_unreachable"
    assert 4 < elapsed < TOTAL_DEADLINE + 4  # 4 s for a busy machine; the tenant never answers


def test_inapp_needs_the_backchannel_and_a_data_object(webapp, login_app):
    off = inapp(webapp, login_app, {"id": "x"}, 403)
    assert off.json["reason"] == "feature_disabled"


def test_inapp_rejects_bad_bodies(webapp, tenant):
    path = f"/v1/apps/{tenant.app_id}/login/custom"
    assert webapp.post_json(path, {"data": "x"}, status=400).json["reason"] == "claims_invalid"
    assert webapp.post_json(path, {"data": {"a": "x" * 5000}},
                            status=400).json["reason"] == "claims_invalid"
    assert webapp.post(path, "{", content_type="application/json",
                       status=400).json["error"] == "invalid_request"


def open_form(webapp, app, **extra):
    verifier, challenge = pkce_pair()
    page = webapp.get(f"/v1/apps/{app.app_id}/login", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge, "state": "cs", **extra})
    return page, verifier


def test_hosted_form_good_passphrase_ends_with_a_code(webapp, tenant):
    page, verifier = open_form(webapp, tenant)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    form = page.forms[0]
    assert [f.get("id") for f in page.html.find_all("input") if f.get("type") != "hidden"] == [
        "field-id", "field-passphrase"]
    assert page.html.find("label", attrs={"for": "field-passphrase"})
    form["id"] = "alice"
    form["passphrase"] = "wonderland"
    done = form.submit(status=303)
    back = query_of(done.location)
    assert done.location.startswith(CLIENT_REDIRECT) and back["state"] == "cs"
    tokens = webapp.post(f"/v1/apps/{tenant.app_id}/token", {
        "grant_type": "authorization_code", "code": back["code"],
        "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier}).json
    assert tokens["user"]["external_id"] == "1001"


def test_hosted_form_bad_passphrase_shows_one_generic_message(webapp, tenant):
    page, _ = open_form(webapp, tenant)
    form = page.forms[0]
    form["id"] = "alice"
    form["passphrase"] = "wrong"
    again = form.submit(status=401)
    assert "Sign-in failed" in again.text
    assert again.html.find(id="field-id")["value"] == "alice"
    assert again.html.find(id="field-passphrase").get("value") in (None, "")
    # The form served again works (a fresh state was issued for it).
    retry = again.forms[0]
    retry["passphrase"] = "wonderland"
    assert "code" in query_of(retry.submit(status=303).location)


def test_hosted_form_post_needs_the_binding_cookie_and_a_live_state(webapp, tenant):
    page, _ = open_form(webapp, tenant)
    state = page.forms[0]["state"].value
    webapp.reset()
    foreign = webapp.post(f"/v1/apps/{tenant.app_id}/login",
                          {"state": state, "id": "alice", "passphrase": "wonderland"},
                          headers={"Accept": "application/json"}, status=400)
    assert foreign.json["reason"] == "state_not_bound"


def test_hosted_form_requires_the_backchannel(webapp, login_app):
    page = webapp.get(f"/v1/apps/{login_app.app_id}/login", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1]}, status=302)
    assert query_of(page.location)["reason"] == "feature_disabled"


def test_hosted_form_speaks_openid_connect_with_form_post(webapp, tenant):
    """The hosted form takes the OIDC parameters too; after the POST the code
    travels in a form_post page, with iss, and the exchange gives an ID token."""
    verifier, challenge = pkce_pair()
    page = webapp.get(f"/v1/apps/{tenant.app_id}/login", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge, "state": "cs",
        "scope": "openid", "nonce": "n-1", "response_mode": "form_post",
        "client_id": tenant.app_id, "response_type": "code"})
    form = page.forms[0]
    form["id"] = "alice"
    form["passphrase"] = "wonderland"
    posted = form.submit(status=200)
    fields = {f["name"]: f["value"] for f in posted.html.find("form").find_all("input")}
    assert posted.html.find("form")["action"] == CLIENT_REDIRECT
    assert fields["iss"] == f"http://bk.test/v1/apps/{tenant.app_id}" and fields["state"] == "cs"
    tokens = webapp.post(f"/v1/apps/{tenant.app_id}/token", {
        "grant_type": "authorization_code", "code": fields["code"],
        "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier}).json
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == "n-1" and tokens["scope"] == "openid"
