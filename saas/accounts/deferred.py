"""Account requests whose answer must not tell a known address from an unknown one.

A password-reset request and a sign-up answer the same page for every address,
and the request does the same work for every address: it validates, rate-limits,
hashes the password (sign-up) and hands ONE sealed task message to the broker
once it commits. The task (``workers.accounts``) looks the address up and does
what it calls for — issue a reset link, create the account, or tell a taken
address's owner that someone tried it — in a transaction of its own, mail
leaving after that commits. The message is sealed with the master key, so the
broker never holds an address or a password hash in clear.

An eager app (development, tests) runs the task inline once the request
commits, so the account exists when the sign-up answer arrives.
"""

from __future__ import annotations

import json
from typing import Any

from saas.accounts.mails import Mailer, mail_reset, mail_signup_attempt, mail_verification
from saas.audit.services import record_event, request_facts
from saas.audit.types import AuditType
from saas.crypto import SecretBox, constant_time_equals
from saas.tasks import TaskName, send_after_commit
from saas.tenants.services import EmailTaken, create_owner, member_by_email

RESET = "reset_password"
SIGN_UP = "sign_up"


def seal_request(box: SecretBox, kind: str, **fields: Any) -> str:
    return box.encrypt(json.dumps({"kind": kind, **fields}))


def unseal_request(box: SecretBox, kind: str, sealed: str) -> dict[str, Any]:
    """The fields of a sealed request of ``kind`` (a message sealed for
    another task, a mail say, is refused)."""
    payload = json.loads(box.decrypt(sealed))
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        raise ValueError(f"not a sealed {kind} request")
    return payload


def queue_reset(request, email: str, *, deliver: bool) -> None:
    """Ask for a reset link for ``email`` (normalised) once the request commits;
    ``deliver=False`` (the address was mailed enough lately) records the
    request and mails nothing."""
    send_after_commit(request, TaskName.REQUEST_RESET, seal_request(
        request.secret_box, RESET, email=email, deliver=deliver,
        facts=request_facts(request)))


def queue_sign_up(request, *, tenant_name: str, email: str, password_hash: str) -> None:
    """Ask for a new tenant owned by ``email`` (normalised) once the request commits."""
    send_after_commit(request, TaskName.SIGN_UP, seal_request(
        request.secret_box, SIGN_UP, tenant_name=tenant_name, email=email,
        password_hash=password_hash, facts=request_facts(request)))


def carry_out_reset(mailer: Mailer, payload: dict[str, Any]) -> None:
    """Mail a reset link if a member has the address; audit the request either way."""
    member = member_by_email(mailer.db, payload["email"])
    if member is not None and payload["deliver"]:
        mail_reset(mailer, member)
    record_event(mailer.db, AuditType.MEMBER_PASSWORD_RESET_REQUESTED,
                 tenant_id=member.tenant_id if member else None, facts=payload["facts"],
                 details={"via": "dashboard"})


def carry_out_sign_up(mailer: Mailer, payload: dict[str, Any]) -> None:
    """Create the tenant and its unverified owner and mail the verification
    link; for a taken address, tell its owner instead and change nothing."""
    email = payload["email"]
    try:
        member = create_owner(mailer.db, tenant_name=payload["tenant_name"], email=email,
                              password_hash=payload["password_hash"])
    except EmailTaken:
        existing = member_by_email(mailer.db, email)
        if existing is not None and constant_time_equals(existing.password_hash,
                                                         payload["password_hash"]):
            # This very sign-up, delivered again (its worker was lost after the
            # commit): the hash is salted, so no other sign-up has it.
            if existing.email_verified_at is None:
                mail_verification(mailer, existing)
            return
        mail_signup_attempt(mailer, email)
        return
    record_event(mailer.db, AuditType.TENANT_CREATED, tenant_id=member.tenant_id,
                 facts=payload["facts"], details={"member_email": member.email})
    mail_verification(mailer, member)
