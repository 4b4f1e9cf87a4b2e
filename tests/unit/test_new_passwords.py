"""New passwords: long enough, not too long (never cut), not a common one."""

from __future__ import annotations

import pytest

from saas.passwords import (
    MAX_PASSWORD_LENGTH,
    PasswordRejected,
    check_new_password,
    common_passwords,
)


def test_a_good_passphrase_passes():
    check_new_password("correct horse battery staple", email="alice@example.com")
    check_new_password("x" * 3 + "a long but fine one" + "é" * 10)


@pytest.mark.parametrize("password", [
    "qwertyuiop", "1234567890", "password123", "Password123", "PASSWORD123",
    "1q2w3e4r5t", "iloveyou12345", "dragon1234567", "monkey!!!!!!", "football2024",
])
def test_common_passwords_are_refused_with_a_helpful_message(password):
    with pytest.raises(PasswordRejected) as refused:
        check_new_password(password)
    assert isinstance(refused.value, ValueError)
    assert "common" in str(refused.value) and "passphrase" in str(refused.value)


def test_too_long_is_refused_not_cut():
    check_new_password("a few words " + "z" * (MAX_PASSWORD_LENGTH - 12))
    with pytest.raises(PasswordRejected, match=f"at most {MAX_PASSWORD_LENGTH:,} characters"):
        check_new_password("a few words " + "z" * (MAX_PASSWORD_LENGTH - 11))


def test_too_short_is_refused():
    with pytest.raises(PasswordRejected, match="at least 10 characters"):
        check_new_password("tiny")


def test_the_email_is_no_password():
    for password in ("alice.smith@example.com", "ALICE.SMITH1234", "alice.smith"):
        with pytest.raises(PasswordRejected, match="email"):
            check_new_password(password, email="Alice.Smith@example.com")


def test_the_shipped_list_holds_thousands():
    listed = common_passwords()
    assert len(listed) >= 5000 and "123456" in listed and "qwertyuiop" in listed
    assert not any(line.startswith("#") for line in listed)
