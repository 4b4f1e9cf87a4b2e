"""Checking a member's second factor in a request: a code (TOTP or recovery)
or a passkey, throttled and audited.

Wrong answers charge a progressive penalty per member (waits of 1, 2, 4 … s,
capped: ``saas.ratelimit``), so guessing six digits is slow but the member is
never locked out; every failure is audited as ``member.second_factor_failed``.
"""

from __future__ import annotations

from saas.accounts.passkeys import PasskeyRefused, authenticate
from saas.accounts.recovery import remaining_codes, spend_code
from saas.accounts.totp import accept_code, confirmed_totp, looks_like_totp
from saas.audit.services import record_event
from saas.audit.types import AuditType, Outcome
from saas.db import utcnow
from saas.ratelimit import Decision
from saas.tenants.models import Member

PENALTY = "second_factor"
MAX_CODE = 64


def allowed(request, member: Member) -> Decision:
    """May the member try a second factor now? Call before each try."""
    return request.rate_limiter.penalty(None, PENALTY, str(member.id))


def _failed(request, member: Member, reason: str) -> None:
    request.rate_limiter.record_failure(None, PENALTY, str(member.id))
    record_event(request.db, AuditType.MEMBER_SECOND_FACTOR_FAILED, outcome=Outcome.FAILURE,
                 tenant_id=member.tenant_id, reason=reason, request=request,
                 details={"member_email": member.email})


def _passed(request, member: Member) -> None:
    request.rate_limiter.reset(None, PENALTY, str(member.id))


def check_code(request, member: Member, code: str) -> str | None:
    """``"totp"`` or ``"recovery_code"`` when ``code`` is right (and now spent),
    else None. The caller asked ``allowed`` first."""
    code = code[:MAX_CODE]
    if looks_like_totp(code):
        factor = confirmed_totp(request.db, member)
        if factor is not None and accept_code(request.db, request.secret_box, factor, code):
            _passed(request, member)
            return "totp"
        _failed(request, member, "totp_invalid")
        return None
    if spend_code(request.db, member, code, utcnow()):
        _passed(request, member)
        record_event(request.db, AuditType.MEMBER_RECOVERY_CODE_USED,
                     tenant_id=member.tenant_id, request=request,
                     details={"member_email": member.email,
                              "remaining": remaining_codes(request.db, member)})
        return "recovery_code"
    _failed(request, member, "recovery_code_invalid")
    return None


def check_passkey(request, member: Member, credential_json: str) -> bool:
    """The posted WebAuthn assertion is the member's, for the pending challenge."""
    try:
        authenticate(request.registry.settings, request.session, request.db, member,
                     credential_json, utcnow())
    except PasskeyRefused:
        _failed(request, member, "passkey_invalid")
        return False
    _passed(request, member)
    return True
