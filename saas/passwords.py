"""Members' passwords: argon2id via argon2-cffi (at least m=19 MiB, t=2, p=1), and
the rules a new one must meet (:func:`check_new_password`)."""

from __future__ import annotations

import functools
import re
from importlib.resources import files

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    def __init__(self, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1):
        self._hasher = PasswordHasher(
            time_cost=max(time_cost, 2),
            memory_cost=max(memory_cost, 19 * 1024),
            parallelism=max(parallelism, 1),
            type=Type.ID,
        )
        # Verified against when the email is unknown, so timing does not tell.
        self._dummy_hash = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def passwords_from_settings(settings) -> Passwords:
    return Passwords(
        time_cost=settings["saas.argon2.time_cost"],
        memory_cost=settings["saas.argon2.memory_cost"],
        parallelism=settings["saas.argon2.parallelism"],
    )


class PasswordRejected(ValueError):
    """A new password that breaks a rule; the message says which, for the member."""


COMMON = ("This is one of the most common passwords, the first an attacker tries. "
          "Pick something longer and personal, for example a passphrase of four or "
          "five unrelated words.")
LIKE_EMAIL = "Do not use your email address as the password: pick a passphrase instead."
# What people add to a common password to pass a length rule ("dragon1234!").
_PADDING = re.compile(r"[\d\W_]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (saas/common_passwords.txt, from zxcvbn, MIT), lower-cased."""
    text = files("saas").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.casefold() for line in text.splitlines()
                     if line and not line.startswith("#"))


def _is_common(password: str) -> bool:
    folded = password.casefold()
    listed = common_passwords()
    return folded in listed or _PADDING.sub("", folded) in listed


def _is_like_email(password: str, email: str | None) -> bool:
    if not email:
        return False
    folded = _PADDING.sub("", password.casefold())
    local = email.casefold().partition("@")[0]
    return folded in (email.casefold(), local) or password.casefold() == email.casefold()


def check_new_password(password: str, *, email: str | None = None) -> None:
    """Raise :class:`PasswordRejected` unless ``password`` may become a member's.

    Length 10 to 1,024 characters (longer is refused, never cut), not in the
    shipped list of common passwords (nor one of them with digits or signs
    added at the end), not the member's email or its local part.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(
            f"Use at most {MAX_PASSWORD_LENGTH:,} characters (this one has "
            f"{len(password):,}); nothing is cut off, so shorten it yourself.")
    if _is_like_email(password, email):
        raise PasswordRejected(LIKE_EMAIL)
    if _is_common(password):
        raise PasswordRejected(COMMON)


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """The reason a new password is refused (:func:`check_new_password`), or None."""
    try:
        check_new_password(password, email=email)
    except PasswordRejected as exc:
        return str(exc)
    return None

