"""Limits before parsing and security headers on every response."""

from __future__ import annotations

import webtest

from saas.config import configure


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
