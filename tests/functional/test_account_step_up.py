"""Step-up (a fresh second factor for secrets, API keys and members) and the
tenant rule that every member needs a second factor (docs/accounts.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from saas.apikeys.models import ApiKey
from saas.audit.models import AuditEvent
from saas.tenants.models import Role, Tenant
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import add_member, build_world, csrf_token, sign_in
from tests.functional.test_account_factors import (
    age_step_up,
    code,
    enrol_totp,
    forget_penalty,
    password_step,
    signed_in,
)


@pytest.fixture
def world(db, passwords, secret_box):
    return build_world(db, passwords, secret_box)


def _keys(db, tenant_id) -> int:
    return db.scalar(select(func.count()).select_from(ApiKey)
                     .where(ApiKey.tenant_id == tenant_id))


def test_without_a_second_factor_the_password_is_enough(webapp, world):
    sign_in(webapp, world.owner.email)
    page = webapp.get(f"/dashboard/apps/{world.app.app_id}/secrets")
    assert page.html.find(attrs={"name": "second_factor"}) is None
    answer = webapp.post(f"/dashboard/apps/{world.app.app_id}/secrets/reveal",
                         {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD})
    assert answer.status_int == 200 and answer.html.find(id="secret-custom-auth")


def test_revealing_secrets_needs_a_fresh_code(webapp, world, db, registry):
    sign_in(webapp, world.owner.email)
    secret, _ = enrol_totp(webapp)
    reveal = f"/dashboard/apps/{world.app.app_id}/secrets/reveal"
    # Just enrolled: the factor is fresh for five minutes.
    fresh = webapp.post(reveal, {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD})
    assert fresh.html.find(id="secret-custom-auth")
    age_step_up(registry, webapp)
    page = webapp.get(f"/dashboard/apps/{world.app.app_id}/secrets")
    assert page.html.find(id="reveal-second-factor") is not None
    refused = webapp.post(reveal, {"csrf_token": csrf_token(webapp),
                                   "password": DEFAULT_PASSWORD}, status=401)
    assert "confirm it is you first" in refused.text
    assert refused.html.find(id="secret-custom-auth") is None
    wrong = webapp.post(reveal, {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD,
                                 "second_factor": "000000"}, status=401)
    assert wrong.html.find(id="secret-custom-auth") is None
    assert db.scalar(select(AuditEvent).where(
        AuditEvent.tenant_id == world.tenant_id,
        AuditEvent.type == "member.second_factor_failed")) is not None
    forget_penalty(registry, world.owner)
    done = webapp.post(reveal, {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD,
                                "second_factor": code(secret, 1)})
    assert done.html.find(id="secret-custom-auth")
    # Fresh again for a while: the next action needs no code.
    again = webapp.post(reveal, {"csrf_token": csrf_token(webapp), "password": DEFAULT_PASSWORD})
    assert again.html.find(id="secret-custom-auth")


def test_rotating_and_creating_keys_and_managing_members_need_it_too(webapp, world, db,
                                                                     registry):
    sign_in(webapp, world.owner.email)
    enrol_totp(webapp)
    age_step_up(registry, webapp)
    token = csrf_token(webapp)
    app = f"/dashboard/apps/{world.app.app_id}"
    before = _keys(db, world.tenant_id)
    for path, data in (
            (app + "/secrets/custom_token/rotate", {"password": DEFAULT_PASSWORD,
                                                     "grace_hours": "1"}),
            ("/dashboard/api-keys", {"name": "Nightly", "password": DEFAULT_PASSWORD}),
            ("/dashboard/members/invite", {"email": "x@example.com", "role": "viewer",
                                           "password": DEFAULT_PASSWORD}),
            (f"/dashboard/members/{world.admin.id}/role", {"role": "viewer",
                                                          "password": DEFAULT_PASSWORD}),
            (f"/dashboard/members/{world.admin.id}/remove", {"password": DEFAULT_PASSWORD}),
    ):  # the right password; the missing code is what refuses them
        answer = webapp.post(path, {"csrf_token": token, **data}, expect_errors=True)
        assert answer.status_int in (400, 401), path
        assert "confirm it is you first" in answer.text, path
    db.expire_all()
    assert _keys(db, world.tenant_id) == before
    assert db.get(type(world.admin), world.admin.id).role == Role.ADMIN


def test_the_step_up_page_takes_a_recovery_code_and_goes_back(webapp, world, registry):
    sign_in(webapp, world.owner.email)
    _, codes = enrol_totp(webapp)
    age_step_up(registry, webapp)
    members = webapp.get("/dashboard/members")
    link = members.html.find(id="members-step-up").find("a")["href"]
    page = webapp.get(link)
    form = page.forms[len(page.forms) - 1]
    form["second_factor"] = codes[0]
    back = form.submit(status=303)
    assert back.headers["Location"] == "http://bk.test/dashboard/members"
    webapp.post(f"/dashboard/members/{world.admin.id}/role",
                {"csrf_token": csrf_token(webapp), "role": "viewer",
                 "password": DEFAULT_PASSWORD}, status=303)


def test_the_step_up_page_refuses_an_outside_next(webapp, world, registry):
    sign_in(webapp, world.owner.email)
    _, codes = enrol_totp(webapp)
    age_step_up(registry, webapp)
    answer = webapp.post("/dashboard/step-up?next=//evil.example/x",
                         {"csrf_token": csrf_token(webapp), "second_factor": codes[1]},
                         status=303)
    assert answer.headers["Location"] == "http://bk.test/dashboard/apps"


def test_the_tenant_rule_sends_members_without_a_factor_to_enrolment(
        webapp, world, db, passwords, registry):
    viewer = add_member(db, passwords, world.tenant_id, Role.VIEWER)
    db.commit()
    sign_in(webapp, world.owner.email)
    token = csrf_token(webapp)
    # An owner without a factor cannot require one.
    webapp.post("/dashboard/members/second-factor-rule",
                {"csrf_token": token, "require_second_factor": "on"}, status=303)
    db.expire_all()
    assert db.get(Tenant, world.tenant_id).require_second_factor is False
    enrol_totp(webapp)
    webapp.post("/dashboard/members/second-factor-rule",
                {"csrf_token": csrf_token(webapp), "require_second_factor": "on"}, status=303)
    db.expire_all()
    assert db.get(Tenant, world.tenant_id).require_second_factor is True
    (event,) = db.scalars(select(AuditEvent).where(
        AuditEvent.tenant_id == world.tenant_id,
        AuditEvent.type == "tenant.second_factor_rule_changed")).all()
    assert event.details["require_second_factor"] is True

    # The viewer signs in: every page leads to enrolment until a factor is set up.
    sign_in(webapp, viewer.email)
    for path in ("/dashboard/apps", "/dashboard/api-keys", "/dashboard/account",
                 f"/dashboard/apps/{world.app.app_id}/secrets"):
        answer = webapp.get(path, status=303)
        assert answer.headers["Location"] == "http://bk.test/dashboard/account/second-factor"
    page = webapp.get("/dashboard/account/second-factor")
    assert page.html.find(id="factor-required") is not None
    refused = webapp.post("/dashboard/account/password",
                          {"csrf_token": csrf_token_of(page), "current_password": DEFAULT_PASSWORD,
                           "new_password": "another long one"}, status=303)
    assert refused.headers["Location"].endswith("/dashboard/account/second-factor")
    db.expire_all()
    assert passwords.verify(db.get(type(viewer), viewer.id).password_hash, DEFAULT_PASSWORD)
    enrol_totp(webapp)
    assert signed_in(webapp)
    # Signing in again now asks for the code.
    forget_penalty(registry, viewer)
    assert password_step(webapp, viewer.email).headers["Location"].endswith(
        "/dashboard/signin/second-factor")
    assert not signed_in(webapp)


def csrf_token_of(page) -> str:
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


def test_turning_the_rule_off(webapp, world, db):
    sign_in(webapp, world.owner.email)
    secret, _ = enrol_totp(webapp)
    tenant = db.get(Tenant, world.tenant_id)
    tenant.require_second_factor = True
    db.commit()
    webapp.post("/dashboard/members/second-factor-rule", {"csrf_token": csrf_token(webapp)},
                status=303)
    db.expire_all()
    assert db.get(Tenant, world.tenant_id).require_second_factor is False
    assert secret
