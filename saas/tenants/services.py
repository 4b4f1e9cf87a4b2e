"""Tenant sign-up and member authentication."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from saas.db import utcnow
from saas.passwords import Passwords
from saas.tenants.emails import normalise_email
from saas.tenants.models import Member, Role, Tenant

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


class EmailTaken(Exception):
    """A member with this email exists already."""


def is_valid_email(email: str) -> bool:
    """Judged on the normalised form, the one that is stored."""
    email = normalise_email(email)
    return len(email) <= 254 and bool(_EMAIL.match(email))


def sign_up(
    db: Session, passwords: Passwords, *, tenant_name: str, email: str, password: str
) -> Member:
    """Create a tenant and its first member (an owner). Raises EmailTaken."""
    return create_owner(db, tenant_name=tenant_name, email=email,
                        password_hash=passwords.hash(password))


def create_owner(db: Session, *, tenant_name: str, email: str, password_hash: str) -> Member:
    """Create a tenant and its owner from a password hashed already (a sign-up
    hashes in the request, the same work for every address, and creates the
    account in a task). Raises EmailTaken."""
    tenant = Tenant(name=tenant_name.strip())
    member = Member(
        tenant=tenant,
        email=normalise_email(email),
        password_hash=password_hash,
        role=Role.OWNER,
    )
    try:
        # The unique constraint decides, not a read before the insert. Added
        # inside the savepoint, so its rollback takes the new rows out of the
        # session too (the caller may go on using it).
        with db.begin_nested():
            db.add_all([tenant, member])
            db.flush()
    except IntegrityError as exc:
        raise EmailTaken(email) from exc
    return member


def authenticate(db: Session, passwords: Passwords, email: str, password: str) -> Member | None:
    """The member for these credentials, or None; the same work either way."""
    member = db.scalar(select(Member).where(Member.email == normalise_email(email)))
    if not passwords.verify(member.password_hash if member else None, password):
        return None
    if passwords.needs_rehash(member.password_hash):
        member.password_hash = passwords.hash(password)
    member.last_sign_in_at = utcnow()
    return member


def member_by_email(db: Session, email: str) -> Member | None:
    return db.scalar(select(Member).where(Member.email == normalise_email(email)))
