"""A fullwidth or otherwise look-alike spelling of a member's address is the same
address: it cannot make a second account, and it signs the member in."""

from __future__ import annotations

from sqlalchemy import func, select

from saas.tenants.models import Member
from tests.factories import DEFAULT_PASSWORD, make_member
from tests.functional.dashboard_helpers import build_world, csrf_token, sign_in

FULLWIDTH = "ａｌｉｃｅ@example.com"


def _members(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Member))


def test_a_fullwidth_copy_of_an_address_makes_no_second_account(webapp, db, passwords):
    make_member(db, passwords, email="alice@example.com")
    db.commit()
    before = _members(db)
    form = webapp.get("/dashboard/signup").forms[0]
    form["tenant_name"] = "Copycat"
    form["email"] = FULLWIDTH
    form["password"] = "another long passphrase"
    form.submit(status="*")
    assert _members(db) == before
    assert db.scalar(select(Member).where(Member.email == FULLWIDTH)) is None


def test_the_member_signs_in_with_any_spelling_of_the_address(webapp, db, passwords):
    make_member(db, passwords, email="alice@example.com")
    db.commit()
    sign_in(webapp, "ＡＬＩＣＥ@ｅｘａｍｐｌｅ.com", DEFAULT_PASSWORD)  # 303 or it fails
    assert webapp.get("/dashboard/apps").status_int == 200


def test_new_addresses_are_stored_normalised(webapp, db):
    form = webapp.get("/dashboard/signup").forms[0]
    form["tenant_name"] = "Fullwidth Ltd"
    form["email"] = "ＢＯＢ@example.com"
    form["password"] = "another long passphrase"
    form.submit(status="*")
    db.expire_all()
    assert db.scalar(select(Member.email).where(Member.email.like("%example.com"))) == \
        "bob@example.com"


def test_an_invitation_to_a_look_alike_of_a_member_is_refused(webapp, db, passwords,
                                                              secret_box):
    world = build_world(db, passwords, secret_box, email="carol@example.com")
    sign_in(webapp, world.owner.email)
    webapp.post("/dashboard/members/invite",
                {"csrf_token": csrf_token(webapp), "email": "ｃａｒｏｌ@example.com",
                 "role": "viewer", "password": DEFAULT_PASSWORD}, status=400)
