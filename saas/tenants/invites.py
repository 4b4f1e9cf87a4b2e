"""Invitations: a single-use link that lets someone set a password and join a tenant.

No email is sent; the inviter passes the link on. Only the token's SHA-256 is
stored, the link expires after seven days and works once.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from saas.crypto import hash_token, random_token
from saas.db import utcnow
from saas.passwords import Passwords
from saas.tenants.emails import normalise_email
from saas.tenants.models import Invite, Member, Role
from saas.tenants.services import EmailTaken

INVITE_LIFETIME = dt.timedelta(days=7)
MAX_TOKEN_LENGTH = 128


class InviteUnusable(Exception):
    """The invitation was used, revoked or has expired meanwhile."""


def create_invite(db: Session, inviter: Member, email: str, role: Role) -> tuple[Invite, str]:
    """A new invite (replacing pending ones for the email); returns it and its token.

    Raises ``EmailTaken`` when the email already belongs to a member.
    """
    email = normalise_email(email)
    if db.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise EmailTaken(email)
    db.execute(delete(Invite).where(
        Invite.tenant_id == inviter.tenant_id, Invite.email == email,
        Invite.accepted_at.is_(None)))
    token = random_token(32)
    invite = Invite(tenant_id=inviter.tenant_id, email=email, role=role,
                    token_hash=hash_token(token), invited_by_id=inviter.id,
                    expires_at=utcnow() + INVITE_LIFETIME)
    db.add(invite)
    db.flush()
    return invite, token


def pending_invites(db: Session, tenant_id: uuid.UUID) -> list[Invite]:
    return list(db.scalars(
        select(Invite)
        .where(Invite.tenant_id == tenant_id, Invite.accepted_at.is_(None),
               Invite.expires_at > utcnow(), Invite.invited_by_id.is_not(None))
        .order_by(Invite.created_at.desc())
    ))


def invite_of_tenant(db: Session, tenant_id: uuid.UUID, invite_id: str) -> Invite | None:
    try:
        key = uuid.UUID(invite_id)
    except ValueError:
        return None
    return db.scalar(select(Invite).where(Invite.tenant_id == tenant_id, Invite.id == key,
                                          Invite.accepted_at.is_(None)))


def invite_by_token(db: Session, token: str) -> Invite | None:
    """The usable invite for a presented token: unused, not expired, and made by
    someone who is still a member (a removed inviter's links admit nobody)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.scalar(select(Invite).where(
        Invite.token_hash == hash_token(token), Invite.accepted_at.is_(None),
        Invite.expires_at > utcnow(), Invite.invited_by_id.is_not(None)))


def revoke_invites_by(db: Session, member_id: uuid.UUID) -> list[str]:
    """Delete the pending invitations a (departing) member made; returns their emails."""
    emails = list(db.scalars(delete(Invite).where(
        Invite.invited_by_id == member_id, Invite.accepted_at.is_(None),
    ).returning(Invite.email).execution_options(synchronize_session=False)))
    return sorted(emails)


def accept_invite(db: Session, passwords: Passwords, invite: Invite, password: str) -> Member:
    """Use the invite once: create the member with the invited email and role.

    Raises ``InviteUnusable`` if another request used it first and
    ``EmailTaken`` if the email became a member's meanwhile.
    """
    claimed = db.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.accepted_at.is_(None),
               Invite.expires_at > utcnow())
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise InviteUnusable()
    member = Member(tenant_id=invite.tenant_id, email=invite.email, role=invite.role,
                    password_hash=passwords.hash(password), last_sign_in_at=utcnow())
    db.add(member)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        raise EmailTaken(invite.email) from exc
    return member
