"""What the account tasks do with a sealed request (saas/accounts/deferred.py),
on the real database: a sign-up delivered twice, a taken address, a message
sealed for another task."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from saas.accounts.deferred import (
    RESET,
    SIGN_UP,
    carry_out_reset,
    carry_out_sign_up,
    seal_request,
    unseal_request,
)
from saas.accounts.mails import Mailer
from saas.crypto import SecretBox
from saas.db import engine_from_settings
from saas.tenants.models import Member
from tests.conftest import MASTER_KEY
from tests.factories import make_member

FACTS = {"ip": "192.0.2.9", "user_agent": "test", "request_id": "r-1"}


@pytest.fixture
def sent() -> list[tuple[str, str, bool]]:
    """The mailer's outbox: (recipient, subject, deliver) of each message."""
    return []


@pytest.fixture
def mailer(db, app_settings, sent) -> Mailer:
    return Mailer(db, app_settings, lambda message, deliver=True: sent.append(
        (message["To"], message["Subject"], deliver)))


def _sign_up_payload(email: str, password_hash: str) -> dict:
    return {"kind": SIGN_UP, "tenant_name": "Acme", "email": email,
            "password_hash": password_hash, "facts": FACTS}


def test_a_sign_up_delivered_again_mails_the_link_again_not_a_warning(mailer, sent, db, passwords):
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    payload = _sign_up_payload(email, passwords.hash("a passphrase of mine"))
    carry_out_sign_up(mailer, payload)
    carry_out_sign_up(mailer, payload)
    assert db.scalar(select(func.count()).select_from(Member).where(Member.email == email)) == 1
    assert [subject for _, subject, _ in sent] == ["Confirm your email address"] * 2


def test_a_taken_address_is_told_and_keeps_its_password(mailer, sent, db, passwords):
    member = make_member(db, passwords)
    before = member.password_hash
    carry_out_sign_up(mailer, _sign_up_payload(member.email, passwords.hash("another one")))
    assert sent == [(member.email, "Someone tried to sign up with your address", True)]
    db.refresh(member)
    assert member.password_hash == before


def test_a_reset_over_the_address_limit_mails_nothing(mailer, sent, db, passwords):
    member = make_member(db, passwords)
    carry_out_reset(mailer, {"kind": RESET, "email": member.email, "deliver": False,
                             "facts": FACTS})
    assert sent == []
    carry_out_reset(mailer, {"kind": RESET, "email": member.email, "deliver": True,
                             "facts": FACTS})
    assert [subject for _, subject, _ in sent] == ["Reset your Bridgekeeper password"]


def test_a_failed_sign_up_logs_neither_the_hash_nor_the_address(app_settings, passwords):
    engine = engine_from_settings(app_settings)
    # Longer than the column: the member's insert fails (the form would refuse it).
    email = f"logged-{uuid.uuid4().hex * 10}@example.com"
    payload = _sign_up_payload(email, passwords.hash("a passphrase of mine"))
    try:
        with Session(engine) as db, pytest.raises(DBAPIError) as failed:
            carry_out_sign_up(Mailer(db, app_settings, lambda *a, **k: None), payload)
    finally:
        engine.dispose()
    assert payload["password_hash"] not in str(failed.value)
    assert email not in str(failed.value)


def test_a_sealed_request_opens_only_as_its_kind():
    box = SecretBox(MASTER_KEY)
    sealed = seal_request(box, RESET, email="a@example.com", deliver=True, facts=FACTS)
    assert "a@example.com" not in sealed
    assert unseal_request(box, RESET, sealed)["email"] == "a@example.com"
    with pytest.raises(ValueError):
        unseal_request(box, SIGN_UP, sealed)
    with pytest.raises(ValueError):
        unseal_request(SecretBox("another master key, long enough to use"), RESET, sealed)
