"""Which requests pyramid_tm manages (saas/db.py ``transaction_wanted``)."""

from __future__ import annotations

import pytest
from pyramid.request import Request

from saas.db import retry_attempts, transaction_wanted

LOGIN_PATH = ["authorize", "callback", "token", "login/custom-token", "me", "userinfo"]


@pytest.mark.parametrize("endpoint", LOGIN_PATH)
def test_the_login_path_runs_without_a_transaction(endpoint):
    assert not transaction_wanted(Request.blank(f"/v1/apps/abc123/{endpoint}"))


@pytest.mark.parametrize("path", [
    "/dashboard/apps", "/v1/manage/apps", "/v1/apps/abc123/logout", "/v1/apps/abc123/revoke",
    "/v1/apps/abc123/login", "/v1/apps/abc123/login/custom", "/v1/apps/abc123/me/extra",
    "/v1/apps/abc123/authorize/", "/v1/apps/a/b/token", "/healthz",
])
def test_everything_else_gets_one(path):
    assert transaction_wanted(Request.blank(path))


def test_a_path_that_is_not_utf8_is_left_to_the_request_text_checks():
    request = Request.blank("/")
    request.environ["PATH_INFO"] = "/v1/apps/\xff/authorize"  # WSGI: bytes as latin-1
    assert not transaction_wanted(request)


@pytest.mark.parametrize("endpoint", LOGIN_PATH)
def test_the_login_path_is_never_retried(endpoint):
    assert retry_attempts(Request.blank(f"/v1/apps/abc123/{endpoint}")) == 1


def test_everything_else_keeps_the_configured_retries():
    assert retry_attempts(Request.blank("/dashboard/apps")) is None
