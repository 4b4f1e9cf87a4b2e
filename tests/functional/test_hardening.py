"""Limits before parsing and security headers on every response."""

from __future__ import annotations

import webtest

from saas.config import configure
from tests.factories import make_member
from tests.flows import CLIENT_REDIRECT, pkce_pair
from tests.functional.dashboard_helpers import sign_in


def test_bodies_over_64_kib_are_413_before_any_view(webapp):
    big = b"x" * (64 * 1024 + 1)
    for path in ("/v1/apps/abcd1234/token", "/dashboard/signin", "/v1/apps/abcd1234/login"):
        response = webapp.post(path, big, content_type="application/octet-stream",
                               headers={"Accept": "application/json"}, status=413)
        assert response.json["reason"] == "payload_too_large"
        assert response.headers["X-Request-ID"] == response.json["request_id"]


def test_security_headers(webapp, app_settings):
    response = webapp.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers  # plain http in tests
    production = webtest.TestApp(configure(dict(app_settings, **{
        "saas.secure_cookies": "true"})).make_wsgi_app())
    assert production.get("/healthz").headers["Strict-Transport-Security"].startswith(
        "max-age=")


def test_malformed_form_bodies_are_400_not_500(webapp):
    for path in ("/v1/apps/abcd1234/login", "/dashboard/signin", "/v1/apps/abcd1234/token"):
        # A multipart body without a boundary (WebTest's helpers would add one).
        request = webtest.TestRequest.blank(path, method="POST", body=b"--x\r\n",
                                            content_type="multipart/form-data",
                                            headers={"Accept": "application/json"})
        response = webapp.do_request(request, status=400)
        assert response.json["error"] == "invalid_request"
        assert response.json["error_description"] == "the form body is malformed"


def test_forms_in_another_charset_are_400_not_500(webapp):
    # WebOb raises on any charset but UTF-8 wherever a view reads the form.
    for path in ("/v1/apps/abcd1234/login", "/dashboard/signin", "/v1/apps/abcd1234/token"):
        for content_type in ("application/x-www-form-urlencoded; charset=latin-1",
                             "multipart/form-data; boundary=x; charset=iso-8859-1"):
            request = webtest.TestRequest.blank(path, method="POST", body=b"a=1",
                                                headers={"Accept": "application/json",
                                                         "Content-Type": content_type})
            response = webapp.do_request(request, status=400)
            assert response.json["error"] == "invalid_request"
            assert response.json["error_description"] == \
                "a form body must be UTF-8 (charset=utf-8)"


def test_the_management_api_refuses_a_form_in_another_charset_as_its_body(webapp):
    request = webtest.TestRequest.blank(
        "/v1/manage/apps", method="POST", body=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=latin-1"})
    response = webapp.do_request(request, status=400)
    assert response.json["reason"] == "invalid_body"


def test_a_form_that_names_utf_8_in_any_spelling_is_read(webapp, login_app):
    for charset in ("utf-8", "UTF8"):
        response = webapp.post(
            f"/v1/apps/{login_app.app_id}/token", b"grant_type=refresh_token&refresh_token=x.y",
            content_type=f"application/x-www-form-urlencoded; charset={charset}", status=400)
        assert response.json["reason"] == "refresh_invalid"  # the form was read


def test_a_signed_in_member_refused_before_any_view_gets_the_error_page(webapp, db,
                                                                        passwords):
    # The error page shows who is signed in, read from PostgreSQL: before the
    # fix these refusals, made outside the request's transaction, crashed.
    member = make_member(db, passwords)
    db.commit()
    sign_in(webapp, member.email)
    too_large = webapp.post("/dashboard/apps/new", {"name": "x" * (64 * 1024)}, status=413)
    malformed = webapp.do_request(webtest.TestRequest.blank(
        "/dashboard/apps/new", method="POST", body=b"--x\r\n",
        content_type="multipart/form-data", environ=webapp.extra_environ), status=400)
    for page in (too_large, malformed):
        assert page.content_type == "text/html" and member.email in page.text


STRICT_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def test_dashboard_html_gets_a_strict_csp_no_framing_and_no_store(webapp):
    for path, status in (("/dashboard/signin", 200), ("/dashboard/signup", 200),
                         ("/dashboard/apps", 303), ("/dashboard/nowhere", 404)):
        response = webapp.get(path, headers={"Accept": "text/html"}, status=status)
        assert response.headers["Cache-Control"] == "no-store"
        if response.content_type == "text/html":
            assert response.headers["Content-Security-Policy"] == STRICT_CSP
            assert response.headers["X-Frame-Options"] == "DENY"
    # The pages need no inline script or style, so the policy costs nothing.
    page = webapp.get("/dashboard/signin")
    assert [s["src"].rsplit("/", 2)[1:] for s in page.html.select("script")] == [
        ["static", "copy.js"]]
    assert "style=" not in page.text


def test_json_and_static_answers_get_no_csp(webapp):
    health = webapp.get("/healthz")
    assert "Content-Security-Policy" not in health.headers
    assert "X-Frame-Options" not in health.headers
    assert health.headers.get("Cache-Control") != "no-store"


def test_the_hosted_login_form_keeps_its_own_csp(webapp, login_app, db, registry):
    login_app.backchannel = True
    db.commit()
    registry["saas.app_cache"].store(login_app)
    page = webapp.get(f"/v1/apps/{login_app.app_id}/login", {
        "redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1], "state": "cs"})
    # No form-action: the 303 to the client's redirect URI must not be blocked.
    assert page.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'")
    assert page.headers["X-Frame-Options"] == "DENY"
    # Its icon is the service's own, which the policy allows.
    assert page.html.select_one('link[rel="icon"]')["href"].endswith("/static/favicon.svg")
