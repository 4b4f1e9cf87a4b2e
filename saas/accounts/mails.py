"""The account's mail: what each message says and where its link leads.

Every function takes the request (the message leaves after its commit) and
issues the link in the same transaction, so a rolled-back change mails nothing.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from saas.accounts.links import LIFETIMES, issue_link, link_url, new_token
from saas.accounts.models import LinkPurpose
from saas.db import utcnow
from saas.mail.messages import build_message, sender_address
from saas.mail.outbox import send_message
from saas.tenants.models import Member

VERIFY_SUBJECT = "Confirm your email address"
RESET_SUBJECT = "Reset your Bridgekeeper password"
CHANGE_SUBJECT = "Confirm your new email address"
CHANGED_SUBJECT = "The email address of your Bridgekeeper account changed"
PASSWORD_CHANGED_SUBJECT = "Your Bridgekeeper password changed"
SIGNUP_ATTEMPT_SUBJECT = "Someone tried to sign up with your address"


def _message(request, template: str, to: str, subject: str, **values: Any) -> EmailMessage:
    settings = request.registry.settings
    return build_message(template, to=to, subject=subject, sender=sender_address(settings),
                         values=values)


def _hours(purpose: LinkPurpose) -> int:
    return int(LIFETIMES[purpose].total_seconds() // 3600)


def mail_verification(request, member: Member) -> None:
    """Mail ``member`` a link that verifies their address (24 h)."""
    purpose = LinkPurpose.VERIFY_EMAIL
    token = issue_link(request.db, member, purpose)
    send_message(request, _message(
        request, "verify_email", member.email, VERIFY_SUBJECT, email=member.email,
        tenant_name=member.tenant.name, hours=_hours(purpose),
        url=link_url(request.registry.settings, purpose, token)))


def mail_reset(request, email: str, member: Member | None, *, deliver: bool = True) -> None:
    """Mail a reset link (1 h) to ``email`` — or, for an address no member has,
    build the same message and hand over a task the worker drops: the answer
    and the work are the same either way."""
    purpose = LinkPurpose.RESET_PASSWORD
    token = issue_link(request.db, member, purpose) if member is not None else new_token()
    message = _message(
        request, "reset_password", email, RESET_SUBJECT, email=email,
        minutes=int(LIFETIMES[purpose].total_seconds() // 60),
        url=link_url(request.registry.settings, purpose, token))
    send_message(request, message, deliver=deliver and member is not None)


def mail_email_change(request, member: Member, new_email: str, *,
                      deliver: bool = True) -> None:
    """Mail the NEW address a link that confirms it (24 h); ``deliver=False``
    does the same work and drops the message (an address taken meanwhile)."""
    purpose = LinkPurpose.CHANGE_EMAIL
    token = issue_link(request.db, member, purpose, new_email=new_email)
    send_message(request, _message(
        request, "change_email", new_email, CHANGE_SUBJECT, email=new_email,
        old_email=member.email, tenant_name=member.tenant.name, hours=_hours(purpose),
        url=link_url(request.registry.settings, purpose, token)), deliver=deliver)


def mail_email_changed(request, member: Member, old_email: str) -> None:
    """Tell the OLD address that the account moved to a new one."""
    send_message(request, _message(
        request, "email_changed", old_email, CHANGED_SUBJECT, email=member.email,
        old_email=old_email, tenant_name=member.tenant.name,
        when=utcnow().strftime("%Y-%m-%d %H:%M")))


def mail_password_changed(request, member: Member) -> None:
    """Tell the member their password changed, with a way back if it was not them."""
    send_message(request, _message(
        request, "password_changed", member.email, PASSWORD_CHANGED_SUBJECT,
        email=member.email, tenant_name=member.tenant.name,
        when=utcnow().strftime("%Y-%m-%d %H:%M"),
        url=request.registry.settings["saas.public_base_url"] + "/dashboard/forgot-password"))


def mail_signup_attempt(request, email: str) -> None:
    """Tell the owner of a taken address that a sign-up tried it: the sign-up
    page answers the same for new and taken addresses, so only they learn of it."""
    base = request.registry.settings["saas.public_base_url"]
    send_message(request, _message(
        request, "signup_attempt", email, SIGNUP_ATTEMPT_SUBJECT, email=email,
        signin_url=base + "/dashboard/signin", url=base + "/dashboard/forgot-password"))
