"""Per-attempt diagnostics (issue #10): a login's events grouped by attempt id on
the audit page, one attempt's page and its management API twin; tenant-scoped."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from saas.apikeys.services import create_api_key
from saas.audit.models import AuditEvent
from tests.factories import make_app, make_member
from tests.flows import CLIENT_REDIRECT, Login, pkce_pair, query_of
from tests.functional.dashboard_helpers import sign_in
from tests.functional.test_manage_openapi import Checker
from tests.live import python_example, serve_wsgi
from tests.sync_helpers import drain_all, empty_streams


@pytest.fixture
def world(db, passwords, secret_box, webapp, registry, db_connection):
    """Two tenants' apps, a successful and a failed login on the first, one
    login on the second, all drained into PostgreSQL."""
    empty_streams(registry)
    apps = []
    for name in ("Acme", "Globex"):
        member = make_member(db, passwords, tenant_name=name)
        app, secrets = make_app(db, secret_box, member.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                                custom_auth_endpoint="https://tenant.example.com/auth")
        _key, api_key = create_api_key(db, member.tenant_id, "ci", created_by_id=member.id)
        apps.append((member, app, secrets, api_key))
    db.commit()
    (member, app, secrets, _), (_, other, other_secrets, _) = apps
    Login(webapp, app.app_id, secrets["custom_auth"]).tokens(user_id="ann")
    failed = Login(webapp, app.app_id, secrets["custom_auth"])
    time.sleep(0.02)  # a measurable step
    assert query_of(failed.finish(exp=int(time.time()) - 120).location)["reason"] == \
        "token_expired"
    Login(webapp, other.app_id, other_secrets["custom_auth"]).tokens(user_id="zed")
    session_factory = sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                                   expire_on_commit=False)
    drain_all(registry, session_factory)
    sign_in(webapp, member.email)
    return apps


def attempt_ids(db, app) -> dict[str, str]:
    """attempt id → the type of its last event."""
    rows = db.scalars(select(AuditEvent).where(AuditEvent.app_id == app.app_id)
                      .order_by(AuditEvent.at)).all()
    return {row.details["attempt_id"]: row.type for row in rows
            if (row.details or {}).get("attempt_id")}


def test_the_audit_page_groups_events_by_attempt(webapp, db, world):
    (_, app, _, _), (_, other, _, _) = world
    page = webapp.get(f"/dashboard/apps/{app.app_id}/audit?view=attempts")
    table = page.html.find("table", id="attempts")
    rows = [[cell.get_text(" ", strip=True) for cell in tr.find_all("td")]
            for tr in table.tbody.find_all("tr")]
    assert len(rows) == 2
    failed, succeeded = rows  # newest first
    assert "login.started → login.failed" in failed[2] and "token_expired" in failed
    assert failed[3] == "failure"
    assert "login.started → login.succeeded → token.issued" in succeeded[2]
    assert succeeded[3] == "success" and "ann" in succeeded[6]
    assert re.fullmatch(r"\d+ ms", failed[5])
    assert other.app_id not in page.text
    # The events view links each login event to its attempt.
    events = webapp.get(f"/dashboard/apps/{app.app_id}/audit")
    assert len(events.html.select("a.attempt-link")) == 5


def test_one_attempt_page_shows_each_step_reason_and_timing(webapp, db, world):
    (_, app, _, _), _ = world
    ids = attempt_ids(db, app)
    failed = next(a for a, last in ids.items() if last == "login.failed")
    succeeded = next(a for a, last in ids.items() if last == "token.issued")
    page = webapp.get(f"/dashboard/apps/{app.app_id}/audit")
    link = next(a["href"] for a in page.html.select("a.attempt-link") if failed in a["href"])
    detail = webapp.get(link)
    assert detail.html.find(id="attempt-reason").text == "token_expired"
    steps = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
             for tr in detail.html.find(id="attempt-steps").tbody.find_all("tr")]
    assert [s[1] for s in steps] == ["login.started", "login.failed"]
    assert steps[1][3] == "token_expired"
    gap = int(steps[1][4].removesuffix(" ms"))
    assert gap >= 20 and steps[1][5] == steps[1][4]
    ok = webapp.get(f"/dashboard/apps/{app.app_id}/attempts/{succeeded}")  # no time hint
    assert ok.html.find(id="attempt-outcome").get_text(strip=True) == "success"
    assert len(ok.html.find(id="attempt-steps").tbody.find_all("tr")) == 3


def test_attempts_are_tenant_scoped_and_ids_checked(webapp, db, world):
    (_, app, _, _), (_, other, _, _) = world
    foreign = next(iter(attempt_ids(db, other)))
    webapp.get(f"/dashboard/apps/{app.app_id}/attempts/{foreign}", status=404)
    webapp.get(f"/dashboard/apps/{other.app_id}/attempts/{foreign}", status=404)
    webapp.get(f"/dashboard/apps/{app.app_id}/attempts/not-an-id", status=404)
    # A time hint far from the attempt: not found in that window.
    mine = next(iter(attempt_ids(db, app)))
    webapp.get(f"/dashboard/apps/{app.app_id}/attempts/{mine}?at=2020-01-01T00:00:00Z",
               status=404)
    webapp.get(f"/dashboard/apps/{app.app_id}/attempts/{mine}?at=garbage", status=200)


def test_the_management_api_returns_one_attempt(webapp, db, world):
    (_, app, _, key), (_, other, _, other_key) = world
    ids = attempt_ids(db, app)
    failed = next(a for a, last in ids.items() if last == "login.failed")
    check = Checker()
    template = "/v1/manage/apps/{app_id}/attempts/{attempt_id}"
    path = f"/v1/manage/apps/{app.app_id}/attempts/{failed}"
    auth = {"Authorization": f"Bearer {key}"}
    body = check(template, "get", webapp.get(path, headers=auth), exact_keys=True).json
    assert body["attempt_id"] == failed and body["outcome"] == "failure"
    assert body["reason"] == "token_expired" and body["flow"] == "redirect"
    assert [s["type"] for s in body["steps"]] == ["login.started", "login.failed"]
    assert body["duration_ms"] == sum(s["since_previous_ms"] for s in body["steps"])
    around = body["started_at"]
    assert webapp.get(path, {"around": around}, headers=auth).json == body
    check(template, "get", webapp.get(path, {"around": "nope"}, headers=auth, status=400))
    # Another tenant's key, or another app's attempt: not found.
    check(template, "get", webapp.get(path, headers={"Authorization": f"Bearer {other_key}"},
                                      status=404))
    foreign = next(iter(attempt_ids(db, other)))
    webapp.get(f"/v1/manage/apps/{app.app_id}/attempts/{foreign}", headers=auth, status=404)
    check(template, "get", webapp.get(path, status=401))


def test_a_hosted_login_refused_then_accepted_is_a_success(webapp, db, passwords, secret_box,
                                                           registry, db_connection):
    """Wrong password, then the right one, in the same attempt: the attempt's outcome
    is its last decisive event (the refusal stays listed among its steps)."""
    empty_streams(registry)
    member = make_member(db, passwords)
    app, secrets = make_app(db, secret_box, member.tenant_id, redirect_uris=[CLIENT_REDIRECT],
                            custom_auth_endpoint="https://tenant.example.com/auth",
                            backchannel=True)
    db.commit()
    with serve_wsgi(python_example(secrets["custom_auth"])) as base:
        app.custom_auth_endpoint = base + "/auth"
        db.commit()
        registry["saas.app_cache"].store(app)
        verifier, challenge = pkce_pair()
        form = webapp.get(f"/v1/apps/{app.app_id}/login", {
            "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge}).forms[0]
        form["id"], form["passphrase"] = "alice", "wrong"
        retry = form.submit(status=401).forms[0]
        retry["passphrase"] = "wonderland"
        code = query_of(retry.submit(status=303).location)["code"]
    webapp.post(f"/v1/apps/{app.app_id}/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT_REDIRECT,
        "code_verifier": verifier})
    drain_all(registry, sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint",
                                     expire_on_commit=False))
    sign_in(webapp, member.email)

    page = webapp.get(f"/dashboard/apps/{app.app_id}/audit?view=attempts")
    (row,) = [[cell.get_text(" ", strip=True) for cell in tr.find_all("td")]
              for tr in page.html.find("table", id="attempts").tbody.find_all("tr")]
    assert "login.started → login.failed → login.succeeded → token.issued" in row[2]
    assert row[3] == "success" and row[4] == ""
    (attempt_id,) = attempt_ids(db, app)
    detail = webapp.get(f"/dashboard/apps/{app.app_id}/attempts/{attempt_id}")
    assert detail.html.find(id="attempt-outcome").get_text(strip=True) == "success"
    assert detail.html.find(id="attempt-reason") is None
    steps = detail.html.find(id="attempt-steps").tbody.find_all("tr")
    assert "tenant_denied" in steps[1].get_text(" ")  # the refusal is still a step
