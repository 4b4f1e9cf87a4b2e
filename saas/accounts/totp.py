"""TOTP second factors (RFC 6238): enrolment, the QR code, and checking a code.

The seed is encrypted at rest with the master key (``SecretBox``). A code is
accepted one time step either side of now (clocks drift), and never twice:
the accepted step is stored (``last_used_step``) by a conditional UPDATE, so
two requests racing with the same code cannot both pass.
"""

from __future__ import annotations

import datetime as dt
import time

import pyotp
import segno
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from saas.accounts.models import TotpFactor
from saas.crypto import SecretBox, constant_time_equals
from saas.tenants.models import Member

ISSUER = "Bridgekeeper"
STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now


def confirmed_totp(db: Session, member: Member) -> TotpFactor | None:
    return db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id,
                                              TotpFactor.confirmed_at.is_not(None)))


def pending_totp(db: Session, member: Member) -> TotpFactor | None:
    return db.scalar(select(TotpFactor).where(TotpFactor.member_id == member.id,
                                              TotpFactor.confirmed_at.is_(None)))


def start_enrolment(db: Session, box: SecretBox, member: Member) -> TotpFactor:
    """A fresh unconfirmed seed for the member (replacing an unconfirmed one).
    The caller refuses when a confirmed one exists."""
    db.execute(delete(TotpFactor).where(TotpFactor.member_id == member.id,
                                        TotpFactor.confirmed_at.is_(None)))
    factor = TotpFactor(member_id=member.id,
                        secret_ciphertext=box.encrypt(pyotp.random_base32(32)))
    db.add(factor)
    db.flush()
    return factor


def seed(box: SecretBox, factor: TotpFactor) -> str:
    return box.decrypt(factor.secret_ciphertext)


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG markup (no script, no style attribute:
    the dashboard's CSP allows it)."""
    qr = segno.make(uri, error="m")
    return qr.svg_inline(scale=4, border=2, dark="#000", light="#fff",
                         title="QR code for your authenticator app")


def _clean(code: str) -> str:
    return "".join(code.split())


def looks_like_totp(code: str) -> bool:
    cleaned = _clean(code)
    return len(cleaned) == DIGITS and cleaned.isdigit()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (now ± WINDOW) whose code is ``code``, or None."""
    code = _clean(code)
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Every candidate is compared, in constant time: no early exit to time.
        if constant_time_equals(totp.at(step * STEP_SECONDS), code):
            found = step
    return found


def accept_code(db: Session, box: SecretBox, factor: TotpFactor, code: str,
                now: float | None = None) -> bool:
    """True once per time step for a right code: the step is claimed atomically."""
    step = matching_step(seed(box, factor), code, now)
    if step is None:
        return False
    claimed = db.execute(
        update(TotpFactor)
        .where(TotpFactor.id == factor.id,
               or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step))
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed:
        factor.last_used_step = step
        db.flush()
    return claimed == 1


def confirm(factor: TotpFactor, now: dt.datetime) -> None:
    factor.confirmed_at = now
