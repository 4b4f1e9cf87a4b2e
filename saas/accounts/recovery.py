"""Recovery codes: ten single-use codes shown once, stored as SHA-256 hashes.

Each code has 50 random bits (ten base-32 characters, shown as two groups of
five); it is accepted once, claimed by a conditional UPDATE so two requests
cannot spend the same code.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from saas.accounts.models import RecoveryCode
from saas.crypto import hash_token
from saas.tenants.models import Member

COUNT = 10
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
LENGTH = 10


def normalise(code: str) -> str:
    """What is hashed: lower case, without spaces and dashes."""
    return "".join(ch for ch in code.lower() if ch not in " -\t")


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def issue_codes(db: Session, member: Member) -> list[str]:
    """Ten new codes for the member; the old ones stop working."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    codes = [_new_code() for _ in range(COUNT)]
    db.add_all(RecoveryCode(member_id=member.id, code_hash=hash_token(normalise(code)))
               for code in codes)
    db.flush()
    return codes


def remaining_codes(db: Session, member: Member) -> int:
    return db.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.member_id == member.id, RecoveryCode.used_at.is_(None))) or 0


def spend_code(db: Session, member: Member, code: str, now: dt.datetime) -> bool:
    """True if ``code`` is one of the member's unused codes (now used)."""
    cleaned = normalise(code)
    if len(cleaned) != LENGTH:
        return False
    claimed = db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.member_id == member.id,
               RecoveryCode.code_hash == hash_token(cleaned),
               RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return claimed == 1


def drop_codes(db: Session, member: Member) -> int:
    return db.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id)).rowcount
