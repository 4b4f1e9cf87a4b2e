"""The test login (issue #10): one back-channel call to the app's endpoint, each
step shown, the live path's reason for every kind of failure, nothing created."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import jwt
import pytest
from sqlalchemy import func, select

from saas.audit.models import AuditEvent
from saas.backchannel.client import TOTAL_DEADLINE
from saas.users.models import EndUser
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT
from tests.functional.dashboard_helpers import csrf_token, sign_in
from tests.live import free_port, python_example, serve_wsgi


def tenant(answer):
    """A tenant endpoint whose answer is ``answer(query, start_response)``."""
    def app(environ, start_response):
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        return answer(query, start_response)
    return app


def redirect(start_response, location: str):
    start_response("302 Found", [("Location", location)])
    return [b""]


def signed(secret: str, **claims):
    def answer(query, start_response):
        now = int(time.time())
        token = jwt.encode({"user_id": "u-1", "iat": now, "exp": now + 60, "state": query["state"],
                            **claims}, secret, algorithm="HS256")
        return redirect(start_response, f"{query['redirect_uri']}&token={token}"
                                        f"&state={query['state']}")
    return answer


def status(code: str):
    def answer(query, start_response):
        start_response(code, [("Content-Type", "text/plain")])
        return [b"nope"]
    return answer


def other_state(secret):
    def answer(query, start_response):
        token = jwt.encode({"user_id": "u-1"}, secret, algorithm="HS256")
        return redirect(start_response, f"{query['redirect_uri']}&token={token}&state=xyz")
    return answer


def denied(query, start_response):
    return redirect(start_response, f"{query['redirect_uri']}&error=access_denied"
                                    f"&error_description=Wrong+passphrase&state={query['state']}")


@pytest.fixture
def setup(db, passwords, secret_box, webapp):
    member = make_member(db, passwords)
    app, secrets = make_app(db, secret_box, member.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                            custom_auth_endpoint="http://127.0.0.1:9/auth")
    db.commit()
    sign_in(webapp, member.email)
    return app, secrets


def point(db, app, endpoint: str | None) -> None:
    app.custom_auth_endpoint = endpoint
    db.commit()


def run(webapp, app, status=200, **fields):
    body = {"csrf_token": csrf_token(webapp), "field-id": "alice",
            "field-passphrase": "wonderland", **fields}
    return webapp.post(f"/dashboard/apps/{app.app_id}/test-login", body, status=status)


def reason_of(page) -> str | None:
    found = re.search(r'id="result-reason">([a-z_]+)<', page.text)
    return found.group(1) if found else None


def counts(db, app) -> tuple[int, int]:
    users = db.scalar(select(func.count()).select_from(EndUser).where(EndUser.app_id == app.id))
    audits = db.scalar(select(func.count()).select_from(AuditEvent)
                       .where(AuditEvent.app_id == app.app_id,
                              AuditEvent.type != "diagnostics.test_login"))
    return users, audits


CASES = [
    ("401", lambda s: status("401 Unauthorized"), "tenant_denied"),
    ("error redirect", lambda s: denied, "tenant_denied"),
    ("500", lambda s: status("500 Internal Server Error"), "tenant_error"),
    ("200 page", lambda s: status("200 OK"), "tenant_error"),
    ("another state", other_state, "tenant_error"),
    ("bad signature", lambda s: signed("not-the-secret"), "token_bad_signature"),
    ("expired", lambda s: signed(s, exp=int(time.time()) - 120), "token_expired"),
    ("no user_id", lambda s: signed(s, user_id=None), "user_id_missing"),
    ("state claim differs", lambda s: signed(s, state="other"), "claims_invalid"),
]


@pytest.mark.parametrize(("make", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_failing_endpoints_show_the_reason(webapp, db, setup, make, reason):
    app, secrets = setup
    with serve_wsgi(tenant(make(secrets["custom_auth"]))) as base:
        point(db, app, base + "/auth")
        page = run(webapp, app)
    assert reason_of(page) == reason
    assert 'id="answer-status"' in page.text
    assert counts(db, app) == (0, 0)


def test_unreachable_and_missing_endpoints(webapp, db, setup):
    app, _ = setup
    point(db, app, f"http://127.0.0.1:{free_port()}/auth")  # nothing listens there
    assert reason_of(run(webapp, app)) == "tenant_unreachable"
    point(db, app, None)
    assert reason_of(run(webapp, app)) == "feature_disabled"


def description_of(page) -> str:
    """The sentence after the reason code on the result line."""
    line = page.html.find(id="result-reason").parent.get_text(" ", strip=True)
    return line.split(" — ", 1)[1]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_unreachable_says_why_refused_unresolvable_or_silent(webapp, db, setup):
    app, _ = setup
    point(db, app, f"http://127.0.0.1:{free_port()}/auth")  # bound then closed: refused
    refused = run(webapp, app)
    assert reason_of(refused) == "tenant_unreachable"
    assert description_of(refused).startswith("the login endpoint refused the connection (")
    # .invalid never resolves (RFC 2606); the address checks pass it on to DNS.
    point(db, app, "http://does-not-exist.invalid/auth")
    unresolved = run(webapp, app)
    assert reason_of(unresolved) == "tenant_unreachable"
    assert description_of(unresolved).startswith(
        "the host name of the login endpoint did not resolve (dns:")
    with silent_listener() as port:
        point(db, app, f"http://127.0.0.1:{port}/auth")
        started = time.monotonic()
        silent = run(webapp, app)
        assert time.monotonic() - started >= TOTAL_DEADLINE - 0.5  # a real timeout
    assert reason_of(silent) == "tenant_unreachable"
    assert description_of(silent) == "the login endpoint did not answer in time " \
                                     "(deadline exceeded)"
    assert not any("did not answer in time" in description_of(page)
                   for page in (refused, unresolved))


def test_success_against_the_example_endpoint_creates_nothing(webapp, db, setup, registry):
    app, secrets = setup
    with serve_wsgi(python_example(secrets["custom_auth"])) as base:
        point(db, app, base + "/auth")
        page = run(webapp, app)
        wrong = run(webapp, app, **{"field-passphrase": "nope"})
    assert 'id="result-user">1001<' in page.text and reason_of(page) is None
    assert page.headers["Cache-Control"] == "no-store"
    # The steps: request with the token and the passphrase masked, status, Location.
    url = re.search(r'id="request-url">([^<]*)<', page.text).group(1)
    assert url.startswith(base + "/auth?") and "masked" in url
    assert "wonderland" not in page.text and secrets["custom_auth"] not in page.text
    assert re.search(r'id="answer-status">302<', page.text)
    location = re.search(r'id="answer-location">(.*?)</dd>', page.text, re.S).group(1)
    assert "<code>token</code>" in location and "masked" in location
    assert reason_of(wrong) == "tenant_denied" and "Unknown user or wrong passphrase" in wrong.text
    # Nothing created: no user, no login events, no session or code in Redis.
    assert counts(db, app) == (0, 0)
    client, keys = registry["saas.redis"], registry["saas.redis_keys"]
    for kind in ("code", "token-used", "state", "pending", "session"):
        assert not list(client.scan_iter(match=keys.app(app.app_id, kind, "*")))
    # One audit row per run, without sample data or secrets.
    rows = db.scalars(select(AuditEvent).where(AuditEvent.app_id == app.app_id,
                                               AuditEvent.type == "diagnostics.test_login")
                      .order_by(AuditEvent.at)).all()
    assert [(r.outcome, r.reason) for r in rows] == [("success", None),
                                                     ("failure", "tenant_denied")]
    raw = json.dumps([r.details for r in rows])
    assert "wonderland" not in raw and "alice" not in raw
    assert all(set(r.details) == {"by", "status", "verdict", "ms"} for r in rows)


def test_json_data_replaces_the_fields_and_is_checked(webapp, db, setup):
    app, secrets = setup
    with serve_wsgi(python_example(secrets["custom_auth"])) as base:
        point(db, app, base + "/auth")
        page = run(webapp, app, data_json='{"id": "bob", "passphrase": "builder"}')
        assert 'id="result-user">bob-42<' in page.text
        assert "builder" not in page.text  # a secret-looking key is masked
        bad = run(webapp, app, status=400, data_json="[1, 2]")
    assert "JSON object of at most 4 KiB" in bad.text


def test_role_csrf_and_isolation(webapp, db, passwords, setup):
    from saas.tenants.models import Role
    from tests.functional.dashboard_helpers import add_member

    app, _ = setup
    path = f"/dashboard/apps/{app.app_id}/test-login"
    webapp.post(path, {"field-id": "alice"}, status=400)  # no CSRF token
    viewer = add_member(db, passwords, app.tenant_id, Role.VIEWER)
    stranger = make_member(db, passwords)
    db.commit()
    sign_in(webapp, viewer.email)
    assert "Only owners and admins" in webapp.get(path).text
    webapp.post(path, {"csrf_token": csrf_token(webapp)}, status=403)
    sign_in(webapp, stranger.email)
    webapp.get(path, status=404)
    webapp.post(path, {"csrf_token": csrf_token(webapp)}, status=404)
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.type == "diagnostics.test_login")) == 0
