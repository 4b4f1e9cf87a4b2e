"""What second factors a member has, and removing them all (operator recovery)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from saas.accounts.models import Passkey, TotpFactor
from saas.accounts.passkeys import count_passkeys
from saas.accounts.recovery import drop_codes
from saas.accounts.totp import confirmed_totp
from saas.tenants.models import Member


def has_second_factor(db: Session, member: Member) -> bool:
    """A confirmed authenticator app or at least one passkey."""
    return confirmed_totp(db, member) is not None or count_passkeys(db, member) > 0


def needs_enrolment(db: Session, member: Member) -> bool:
    """The member's tenant requires a second factor and the member has none."""
    return bool(member.tenant.require_second_factor) and not has_second_factor(db, member)


@dataclass(frozen=True)
class Removed:
    totp: bool
    passkeys: int
    recovery_codes: int

    def as_dict(self) -> dict[str, object]:
        return {"totp": self.totp, "passkeys": self.passkeys,
                "recovery_codes": self.recovery_codes}


def remove_all_factors(db: Session, member: Member) -> Removed:
    """Every TOTP seed (pending too), passkey and recovery code of the member."""
    totp = db.execute(delete(TotpFactor).where(TotpFactor.member_id == member.id,
                                               TotpFactor.confirmed_at.is_not(None))).rowcount
    db.execute(delete(TotpFactor).where(TotpFactor.member_id == member.id))
    passkeys = db.execute(delete(Passkey).where(Passkey.member_id == member.id)).rowcount
    codes = drop_codes(db, member)
    db.flush()
    return Removed(totp=bool(totp), passkeys=passkeys, recovery_codes=codes)


def drop_codes_if_no_factor(db: Session, member: Member) -> None:
    """Recovery codes back up a factor; with none left they go too."""
    if not has_second_factor(db, member):
        drop_codes(db, member)
