"""Changes to a member's account: verify the email, set a password, switch
the email. Each change of a credential ends the member's other sessions
(``members.sessions_valid_after``); the caller keeps the current one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from saas.passwords import Passwords
from saas.tenants.models import Member
from saas.tenants.services import EmailTaken


def mark_verified(member: Member, now: dt.datetime) -> bool:
    """Record the verified email; False if it was verified already."""
    if member.email_verified_at is not None:
        return False
    member.email_verified_at = now
    return True


def set_password(passwords: Passwords, member: Member, password: str,
                 now: dt.datetime) -> None:
    member.password_hash = passwords.hash(password)
    member.sessions_valid_after = now


def switch_email(db: Session, member: Member, new_email: str, now: dt.datetime) -> str:
    """Give the member ``new_email`` (verified by the link that got here);
    returns the old one. Raises ``EmailTaken`` if a member has it meanwhile."""
    old = member.email
    try:
        # The unique constraint decides, not a read before the update; the
        # changes are made inside the savepoint so a refusal undoes them all.
        with db.begin_nested():
            member.email = new_email
            member.email_verified_at = now
            member.sessions_valid_after = now
            db.flush()
    except IntegrityError as exc:
        raise EmailTaken(new_email) from exc
    return old
