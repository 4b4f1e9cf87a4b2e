"""Passkeys (docs/accounts.md): what the server accepts and refuses, with a
software authenticator forging the answers a real browser would not give."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from saas.accounts import passkeys
from saas.accounts.models import Passkey
from saas.accounts.passkeys import PasskeyRefused
from saas.db import utcnow
from tests.factories import make_member
from tests.soft_authenticator import SoftAuthenticator

SETTINGS = {"saas.public_base_url": "http://bk.test"}
ORIGIN = "http://bk.test"


@pytest.fixture
def member(db, passwords):
    return make_member(db, passwords)


@pytest.fixture
def device():
    return SoftAuthenticator("bk.test", ORIGIN)


def enrol(db, member, device, session=None) -> Passkey:
    session = {} if session is None else session
    options = passkeys.registration_options(SETTINGS, session, db, member)
    return passkeys.register(SETTINGS, session, db, member, device.create(options), "Laptop")


def sign(db, member, device, session=None, **forge) -> Passkey:
    session = {} if session is None else session
    options = passkeys.authentication_options(SETTINGS, session, db, member)
    return passkeys.authenticate(SETTINGS, session, db, member, device.get(options, **forge),
                                 utcnow())


def test_a_passkey_registers_and_then_signs_in(db, member, device):
    key = enrol(db, member, device)
    assert key.credential_id == device.credential_id and key.name == "Laptop"
    used = sign(db, member, device)
    assert used.id == key.id and used.sign_count == 1 and used.last_used_at is not None


def test_a_challenge_is_used_once(db, member, device):
    session: dict = {}
    options = passkeys.registration_options(SETTINGS, session, db, member)
    answer = device.create(options)
    passkeys.register(SETTINGS, session, db, member, answer, "Laptop")
    with pytest.raises(PasskeyRefused):  # the same answer again: no challenge pending
        passkeys.register(SETTINGS, session, db, member, answer, "Laptop")
    options = passkeys.authentication_options(SETTINGS, session, db, member)
    assertion = device.get(options)
    passkeys.authenticate(SETTINGS, session, db, member, assertion, utcnow())
    with pytest.raises(PasskeyRefused):
        passkeys.authenticate(SETTINGS, session, db, member, assertion, utcnow())


def test_an_answer_for_another_origin_is_refused(db, member, device):
    session: dict = {}
    options = passkeys.registration_options(SETTINGS, session, db, member)
    with pytest.raises(PasskeyRefused):
        passkeys.register(SETTINGS, session, db, member,
                          device.create(options, origin="https://evil.example"), "Laptop")
    assert db.scalar(select(Passkey).where(Passkey.member_id == member.id)) is None
    enrol(db, member, device)
    with pytest.raises(PasskeyRefused):
        sign(db, member, device, origin="https://evil.example")


def test_another_members_passkey_signs_nobody_in(db, passwords, member, device):
    enrol(db, member, device)
    other = make_member(db, passwords)
    enrol(db, other, SoftAuthenticator("bk.test", ORIGIN))
    with pytest.raises(PasskeyRefused):  # member's device, presented for the other account
        sign(db, other, device)


def test_a_cloned_authenticator_is_refused_by_its_counter(db, member, device):
    enrol(db, member, device)
    sign(db, member, device, count_step=5)
    with pytest.raises(PasskeyRefused):  # the counter went back: a copy of the key
        sign(db, member, device, count_step=-3)


def test_a_forged_signature_is_refused(db, member, device):
    enrol(db, member, device)
    session: dict = {}
    options = passkeys.authentication_options(SETTINGS, session, db, member)
    assertion = json.loads(device.get(options))
    assertion["response"]["signature"] = assertion["response"]["signature"][::-1]
    with pytest.raises(PasskeyRefused):
        passkeys.authenticate(SETTINGS, session, db, member, json.dumps(assertion), utcnow())


@pytest.mark.parametrize("answer", ["", "not json", "[]", '{"id": 7}', "x" * 70_000])
def test_malformed_answers_are_refused(db, member, device, answer):
    enrol(db, member, device)
    session: dict = {}
    passkeys.authentication_options(SETTINGS, session, db, member)
    with pytest.raises(PasskeyRefused):
        passkeys.authenticate(SETTINGS, session, db, member, answer, utcnow())


def test_the_same_credential_cannot_be_registered_twice(db, member, device):
    enrol(db, member, device)
    with pytest.raises(PasskeyRefused):
        enrol(db, member, device)
