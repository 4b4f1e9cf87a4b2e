"""A tenant's members: list, change roles, remove, never leaving it without an owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.apikeys.services import revoke_keys_created_by
from saas.tenants.invites import revoke_invites_by
from saas.tenants.models import Member, Role


class LastOwner(Exception):
    """The change would leave the tenant without an owner."""


def members_of_tenant(db: Session, tenant_id: uuid.UUID) -> list[Member]:
    return list(db.scalars(
        select(Member).where(Member.tenant_id == tenant_id).order_by(Member.created_at)
    ))


def member_of_tenant(db: Session, tenant_id: uuid.UUID, member_id: str) -> Member | None:
    """The member with this id if they belong to the tenant; never another's."""
    try:
        key = uuid.UUID(member_id)
    except ValueError:
        return None
    return db.scalar(select(Member).where(Member.tenant_id == tenant_id, Member.id == key))


def _other_owners(db: Session, member: Member) -> int:
    # Lock the tenant's owners so two owners demoting each other cannot both win.
    owners = db.scalars(
        select(Member.id)
        .where(Member.tenant_id == member.tenant_id, Member.role == Role.OWNER)
        .with_for_update()
    ).all()
    return sum(1 for owner in owners if owner != member.id)


def change_role(db: Session, member: Member, role: Role) -> Role | None:
    """Give the member a new role; returns the old one, or None if unchanged."""
    if member.role == role:
        return None
    if member.role == Role.OWNER and not _other_owners(db, member):
        raise LastOwner()
    old, member.role = member.role, role
    return old


@dataclass
class Removal:
    """What went with a removed member: the prefixes of the API keys revoked and
    the emails of the pending invitations withdrawn."""

    api_keys_revoked: list[str] = field(default_factory=list)
    invites_revoked: list[str] = field(default_factory=list)

    def details(self) -> dict[str, list[str]]:
        return {"api_keys_revoked": self.api_keys_revoked,
                "invites_revoked": self.invites_revoked}


def remove_member(db: Session, member: Member) -> Removal:
    """Remove the member; their dashboard session ends with their row, the API
    keys they created are revoked (a key acts with its creator's role) and their
    pending invitations withdrawn (a link would outlive its inviter's trust)."""
    if member.role == Role.OWNER and not _other_owners(db, member):
        raise LastOwner()
    keys = revoke_keys_created_by(db, member.id)
    invites = revoke_invites_by(db, member.id)
    db.delete(member)
    return Removal(api_keys_revoked=[key.prefix for key in keys], invites_revoked=invites)

