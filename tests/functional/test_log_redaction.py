"""Tokens in paths (invitation, verification, reset and email-change links) never
reach a log line: the access log writes a hash prefix in their place."""

from __future__ import annotations

import importlib.util
import logging
import pathlib
from types import SimpleNamespace

import pytest

from saas.crypto import random_token
from saas.logging import TOKEN_PATH_PREFIXES, redact_path
from tests.functional.dashboard_helpers import build_world

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _lines(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def test_an_invitation_link_is_logged_as_a_hash_prefix(webapp, db, passwords, secret_box,
                                                       caplog):
    world = build_world(db, passwords, secret_box)
    with caplog.at_level(logging.DEBUG):
        webapp.get(f"/dashboard/invite/{world.invite_token}", status=200)
        webapp.get(f"/dashboard/invite/{world.invite_token}x/more", status=404)
    assert world.invite_token not in _lines(caplog)
    paths = [r.path for r in caplog.records if r.name == "saas.access"]
    assert paths[0].startswith("/dashboard/invite/~") and len(paths[0]) < 40


@pytest.mark.parametrize("prefix", ["/dashboard/invite/", "/dashboard/verify/",
                                    "/dashboard/reset/", "/dashboard/email/confirm/"])
def test_every_token_route_is_redacted_even_before_it_exists(webapp, caplog, prefix):
    token = random_token(32)
    with caplog.at_level(logging.DEBUG):
        webapp.get(prefix + token, status="*")
        webapp.post(prefix + token + "/", status="*")
    assert token not in _lines(caplog)


def test_redaction_keeps_what_is_no_token():
    assert redact_path("/dashboard/apps/k3x9a0bz/secrets") == "/dashboard/apps/k3x9a0bz/secrets"
    token = random_token(32)
    redacted = redact_path(f"/dashboard/reset/{token}")
    assert token not in redacted and redacted.startswith("/dashboard/reset/~")
    # The same token always gives the same prefix: log lines of one link correlate.
    assert redacted == redact_path(f"/dashboard/reset/{token}")


def test_every_route_with_a_token_in_its_path_is_covered(pyramid_config):
    routes = pyramid_config.get_routes_mapper().get_routes()
    with_tokens = [r.pattern for r in routes if "{token" in r.pattern]
    assert with_tokens
    for pattern in with_tokens:
        assert pattern.startswith(TOKEN_PATH_PREFIXES), pattern


def test_gunicorns_opt_in_access_log_is_redacted_too():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    from gunicorn.config import Config

    logger = conf.logger_class(Config())
    token = random_token(32)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/dashboard/invite/{token}?a=b",
               "PATH_INFO": f"/dashboard/invite/{token}", "QUERY_STRING": "a=b",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    resp = SimpleNamespace(status="200 OK", status_code=200, headers=[], sent=10,
                           response_length=10)
    req = SimpleNamespace(headers=[])
    atoms = logger.atoms(resp, req, environ, SimpleNamespace(seconds=0, microseconds=1))
    assert token not in str(atoms)
