"""Single-use links mailed to a member: verify an email, reset a password,
confirm a new email. Only the token's SHA-256 is stored; a link works once
and until it expires; a newer link of the same purpose replaces older ones.

The token travels in the URL path (``/dashboard/verify/{token}``,
``/dashboard/reset/{token}``, ``/dashboard/email/confirm/{token}``); the
access log writes a hash prefix in its place.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from saas.accounts.models import AccountLink, LinkPurpose
from saas.crypto import hash_token, random_token
from saas.db import utcnow
from saas.tenants.models import Member

LIFETIMES = {
    LinkPurpose.VERIFY_EMAIL: dt.timedelta(hours=24),
    LinkPurpose.RESET_PASSWORD: dt.timedelta(hours=1),
    LinkPurpose.CHANGE_EMAIL: dt.timedelta(hours=24),
}
# Where each link leads (saas.routes declares the same patterns).
PATHS = {
    LinkPurpose.VERIFY_EMAIL: "/dashboard/verify/{token}",
    LinkPurpose.RESET_PASSWORD: "/dashboard/reset/{token}",
    LinkPurpose.CHANGE_EMAIL: "/dashboard/email/confirm/{token}",
}
TOKEN_BYTES = 32  # 256 bits
MAX_TOKEN_LENGTH = 128


def new_token() -> str:
    return random_token(TOKEN_BYTES)


def link_url(settings: Any, purpose: LinkPurpose, token: str) -> str:
    """The link as mailed: always on ``saas.public_base_url``, never on the
    request's Host header (a forged Host must not redirect a reset link)."""
    return settings["saas.public_base_url"] + PATHS[purpose].format(token=token)


def issue_link(db: Session, member: Member, purpose: LinkPurpose, *,
               new_email: str | None = None, token: str | None = None) -> str:
    """A new link for ``member``; pending links of the same purpose stop working."""
    token = token or new_token()
    db.execute(delete(AccountLink).where(
        AccountLink.member_id == member.id, AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None)))
    now = utcnow()
    db.add(AccountLink(member_id=member.id, purpose=purpose, token_hash=hash_token(token),
                       new_email=new_email, created_at=now,
                       expires_at=now + LIFETIMES[purpose]))
    db.flush()
    return token


def usable_link(db: Session, token: str, purpose: LinkPurpose) -> AccountLink | None:
    """The unused, unexpired link of ``purpose`` for a presented token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.scalar(select(AccountLink).where(
        AccountLink.token_hash == hash_token(token), AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None), AccountLink.expires_at > utcnow()))


def claim_link(db: Session, link: AccountLink) -> bool:
    """Mark the link used, once: False if another request used it first."""
    claimed = db.execute(
        update(AccountLink)
        .where(AccountLink.id == link.id, AccountLink.used_at.is_(None),
               AccountLink.expires_at > utcnow())
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1
