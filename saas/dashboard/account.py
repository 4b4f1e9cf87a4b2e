"""The member's own account: email (verify, change), password, sessions.

Every change of a credential ends the member's other sessions (through
``members.sessions_valid_after`` and by deleting them from Redis) and keeps
the current one under a fresh id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.factors import has_second_factor
from saas.accounts.links import LIFETIMES, claim_link
from saas.accounts.mails import (
    mail_email_change,
    mail_email_changed,
    mail_password_changed,
    request_mailer,
)
from saas.accounts.models import LinkPurpose
from saas.accounts.services import set_password, switch_email
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.dashboard.common import (
    audit,
    confirm_sensitive_action,
    field,
    new_password_field,
    presented_link,
)
from saas.dashboard_sessions import (
    end_all_sessions,
    end_other_sessions,
    end_session,
    member_sessions,
)
from saas.db import utcnow
from saas.devices import describe_device
from saas.passwords import password_problem
from saas.security import Permission
from saas.tenants.emails import normalise_email
from saas.tenants.models import Member
from saas.tenants.services import EmailTaken, is_valid_email, member_by_email

CHANGE_HOURS = int(LIFETIMES[LinkPurpose.CHANGE_EMAIL].total_seconds() // 3600)


def _when(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch else None


def _page(request, **extra: Any) -> dict[str, Any]:
    sessions = [{"ref": s.ref, "device": describe_device(s.user_agent), "ip": s.ip,
                 "signed_in_at": _when(s.signed_in_at), "last_seen": _when(s.last_seen),
                 "current": s.current}
                for s in member_sessions(request, request.member.id)]
    page = {"me": request.member, "sessions": sessions, "errors": {}, "values": {},
            "change_hours": CHANGE_HOURS,
            "has_factor": has_second_factor(request.db, request.member)}
    page.update(extra)
    return page


def _back(request, message: str) -> HTTPSeeOther:
    request.session.flash(message)
    return HTTPSeeOther(request.route_url("dashboard.account"))


def _keep_this_session(request, member: Member, now: dt.datetime) -> int:
    """After ``sessions_valid_after = now``: this session goes on under a new
    id, every other one ends; how many ended."""
    ended = end_other_sessions(request, member.id)  # before the id changes
    request.session.restart(now.timestamp())
    return ended


@view_config(route_name="dashboard.account", renderer="dashboard/account.html",
             request_method="GET", permission=Permission.VIEW)
def account_page(context, request) -> dict:
    return _page(request)


@view_config(route_name="dashboard.account.password", renderer="dashboard/account.html",
             request_method="POST", permission=Permission.VIEW)
def change_password(context, request) -> dict | HTTPSeeOther:
    member = request.member
    refused = confirm_sensitive_action(request, "current_password")
    if refused:
        return _page(request, errors={"current_password": refused})
    password = new_password_field(request, "new_password")
    problem = password_problem(password, email=member.email)
    if problem:
        request.response.status_int = 400
        return _page(request, errors={"new_password": problem})
    now = utcnow()
    set_password(request.passwords, member, password, now)
    ended = _keep_this_session(request, member, now)
    audit(request, context, AuditType.MEMBER_PASSWORD_CHANGED,
          details={"member_email": member.email, "sessions_ended": ended})
    mail_password_changed(request_mailer(request), member)
    return _back(request, "Your password was changed; your other sessions are signed out.")


@view_config(route_name="dashboard.account.email", renderer="dashboard/account.html",
             request_method="POST", permission=Permission.VIEW)
def change_email(context, request) -> dict | HTTPSeeOther:
    member = request.member
    new_email = normalise_email(field(request, "new_email", 254))
    values = {"new_email": new_email}
    if not is_valid_email(new_email):
        request.response.status_int = 400
        return _page(request, values=values, errors={"new_email": "Enter a valid email address."})
    if new_email == member.email:
        request.response.status_int = 400
        return _page(request, values=values,
                     errors={"new_email": "This is your email address already."})
    refused = confirm_sensitive_action(request, "email_password")
    if refused:
        return _page(request, values=values, errors={"email_password": refused})
    limit = request.registry["saas.rate_limits"]["account_mail_to"]
    if not request.rate_limiter.check(None, [(limit, f"member:{member.id}")]).allowed:
        request.response.status_int = 429
        return _page(request, values=values, errors={
            "new_email": "Too many links were sent a moment ago; try again later."})
    # The same answer whether or not the address is taken (it may be another
    # tenant's member); a taken address is not mailed, and the link would fail.
    taken = member_by_email(request.db, new_email) is not None
    mail_email_change(request_mailer(request), member, new_email, deliver=not taken)
    audit(request, context, AuditType.MEMBER_EMAIL_CHANGE_REQUESTED,
          details={"member_email": member.email})
    return _back(request, f"We sent a link to {new_email}: open it within {CHANGE_HOURS} "
                          "hours to switch. Until then your email stays as it is.")


@view_config(route_name="dashboard.email.confirm", renderer="dashboard/account_link.html",
             request_method="GET")
def confirm_email_page(request) -> dict:
    link = presented_link(request, LinkPurpose.CHANGE_EMAIL)
    if link is None:
        request.response.status_int = 404
        return {"kind": "invalid"}
    # A button, not an action on GET: mail scanners open links by themselves.
    return {"kind": "confirm_email", "email": link.new_email}


@view_config(route_name="dashboard.email.confirm", renderer="dashboard/account_link.html",
             request_method="POST")
def confirm_email(request) -> dict | HTTPSeeOther:
    link = presented_link(request, LinkPurpose.CHANGE_EMAIL)
    if link is None or not claim_link(request.db, link):
        request.response.status_int = 404
        return {"kind": "invalid"}
    member = request.db.get(Member, link.member_id)
    # Asked before the change: afterwards this session would be before the cut-off.
    signed_in_here = request.member is not None and request.member.id == member.id
    now = utcnow()
    try:
        old_email = switch_email(request.db, member, link.new_email, now)
    except EmailTaken:
        request.response.status_int = 409
        return {"kind": "email_taken"}
    if signed_in_here:
        _keep_this_session(request, member, now)
    else:
        end_all_sessions(request, member.id)
    record_event(request.db, AuditType.MEMBER_EMAIL_CHANGED, tenant_id=member.tenant_id,
                 request=request, details={"old_email": old_email, "new_email": member.email})
    mail_email_changed(request_mailer(request), member, old_email)
    request.session.flash(f"Your email address is now {member.email}.")
    if signed_in_here:
        return HTTPSeeOther(request.route_url("dashboard.account"))
    return HTTPSeeOther(request.route_url("dashboard.signin"))


@view_config(route_name="dashboard.account.session.end", request_method="POST",
             permission=Permission.VIEW)
def sign_out_session(context, request) -> HTTPSeeOther:
    member = request.member
    if not end_session(request, member.id, request.matchdict["ref"]):
        return _back(request, "That session had ended already.")
    audit(request, context, AuditType.MEMBER_SESSION_REVOKED,
          details={"member_email": member.email, "sessions_ended": 1})
    return _back(request, "The session is signed out.")


@view_config(route_name="dashboard.account.sessions.others", request_method="POST",
             permission=Permission.VIEW)
def sign_out_others(context, request) -> HTTPSeeOther:
    member = request.member
    now = utcnow()
    member.sessions_valid_after = now  # also ends sessions the index does not list
    ended = _keep_this_session(request, member, now)
    audit(request, context, AuditType.MEMBER_SESSION_REVOKED,
          details={"member_email": member.email, "sessions_ended": ended, "others": True})
    return _back(request, "Every other session is signed out.")
