"""Members' passwords: argon2id via argon2-cffi (at least m=19 MiB, t=2, p=1)."""

from __future__ import annotations

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


def password_problem(password: str) -> str | None:
    """A reason the password is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None


def check_new_password(password: str) -> str | None:
    """Why a password being chosen (sign-up, reset, change) is refused, or None.

    The one rule for new passwords; a stricter check (a list of common
    passwords) belongs here, so every form that sets a password gets it.
    """
    return password_problem(password)
