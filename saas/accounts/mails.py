"""The account's mail: what each message says and where its link leads.

Every function takes a :class:`Mailer`: the session that issues the link and
the outbox that sends the message once that session's transaction commits, so
a rolled-back change mails nothing. A request has one (:func:`request_mailer`);
so has a task acting on a request later (``workers.accounts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy.orm import Session

from saas.accounts.links import LIFETIMES, issue_link, link_url
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


@dataclass(frozen=True)
class Mailer:
    """Where account mail is built and sent from.

    ``post(message, deliver=True)`` must send the message only after ``db``'s
    transaction commits (``deliver=False``: the same work, dropped by the worker).
    """

    db: Session
    settings: Mapping[str, Any]
    post: Callable[..., None]

    def message(self, template: str, to: str, subject: str, **values: Any) -> EmailMessage:
        return build_message(template, to=to, subject=subject,
                             sender=sender_address(self.settings), values=values)

    def url(self, path: str) -> str:
        return self.settings["saas.public_base_url"] + path


def request_mailer(request) -> Mailer:
    """The request's mailer: its session; mail leaves after its transaction commits."""
    return Mailer(request.db, request.registry.settings,
                  lambda message, deliver=True: send_message(request, message, deliver=deliver))


def _hours(purpose: LinkPurpose) -> int:
    return int(LIFETIMES[purpose].total_seconds() // 3600)


def mail_verification(mailer: Mailer, member: Member) -> None:
    """Mail ``member`` a link that verifies their address (24 h)."""
    purpose = LinkPurpose.VERIFY_EMAIL
    token = issue_link(mailer.db, member, purpose)
    mailer.post(mailer.message(
        "verify_email", member.email, VERIFY_SUBJECT, email=member.email,
        tenant_name=member.tenant.name, hours=_hours(purpose),
        url=link_url(mailer.settings, purpose, token)))


def mail_reset(mailer: Mailer, member: Member) -> None:
    """Mail ``member`` a link that sets a new password (1 h). Only a task calls
    this (``saas.accounts.deferred``): the request that asked cannot tell
    whether the address belongs to a member."""
    purpose = LinkPurpose.RESET_PASSWORD
    token = issue_link(mailer.db, member, purpose)
    mailer.post(mailer.message(
        "reset_password", member.email, RESET_SUBJECT, email=member.email,
        minutes=int(LIFETIMES[purpose].total_seconds() // 60),
        url=link_url(mailer.settings, purpose, token)))


def mail_email_change(mailer: Mailer, member: Member, new_email: str, *,
                      deliver: bool = True) -> None:
    """Mail the NEW address a link that confirms it (24 h); ``deliver=False``
    does the same work and drops the message (an address taken meanwhile)."""
    purpose = LinkPurpose.CHANGE_EMAIL
    token = issue_link(mailer.db, member, purpose, new_email=new_email)
    mailer.post(mailer.message(
        "change_email", new_email, CHANGE_SUBJECT, email=new_email,
        old_email=member.email, tenant_name=member.tenant.name, hours=_hours(purpose),
        url=link_url(mailer.settings, purpose, token)), deliver=deliver)


def mail_email_changed(mailer: Mailer, member: Member, old_email: str) -> None:
    """Tell the OLD address that the account moved to a new one."""
    mailer.post(mailer.message(
        "email_changed", old_email, CHANGED_SUBJECT, email=member.email,
        old_email=old_email, tenant_name=member.tenant.name,
        when=utcnow().strftime("%Y-%m-%d %H:%M")))


def mail_password_changed(mailer: Mailer, member: Member) -> None:
    """Tell the member their password changed, with a way back if it was not them."""
    mailer.post(mailer.message(
        "password_changed", member.email, PASSWORD_CHANGED_SUBJECT,
        email=member.email, tenant_name=member.tenant.name,
        when=utcnow().strftime("%Y-%m-%d %H:%M"),
        url=mailer.url("/dashboard/forgot-password")))


def mail_signup_attempt(mailer: Mailer, email: str) -> None:
    """Tell the owner of a taken address that a sign-up tried it: the sign-up
    page answers the same for new and taken addresses, so only they learn of it."""
    mailer.post(mailer.message(
        "signup_attempt", email, SIGNUP_ATTEMPT_SUBJECT, email=email,
        signin_url=mailer.url("/dashboard/signin"),
        url=mailer.url("/dashboard/forgot-password")))
