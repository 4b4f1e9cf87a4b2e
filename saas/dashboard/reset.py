"""Forgotten passwords: ask for a link, open it, choose a new password.

The answer to "send me a link" is the same page, byte for byte (but for the
request id), whether or not the address belongs to a member, and costs the
same work: the request never looks the address up. It hands a sealed task
message to the broker, and the task issues the link if a member has the
address (``saas.accounts.deferred``).
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import forget
from pyramid.view import view_config

from saas.accounts.deferred import queue_reset
from saas.accounts.links import LIFETIMES, claim_link
from saas.accounts.mails import mail_password_changed, request_mailer
from saas.accounts.models import LinkPurpose
from saas.accounts.services import mark_verified, set_password
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.client_ip import client_ip
from saas.dashboard.common import field, new_password_field, presented_link
from saas.dashboard_sessions import end_all_sessions
from saas.db import utcnow
from saas.passwords import password_problem
from saas.ratelimit import enforce
from saas.tenants.emails import normalise_email
from saas.tenants.models import Member
from saas.tenants.services import is_valid_email

RESET_MINUTES = int(LIFETIMES[LinkPurpose.RESET_PASSWORD].total_seconds() // 60)


@view_config(route_name="dashboard.forgot", renderer="dashboard/forgot.html",
             request_method="GET")
def forgot_form(request) -> dict:
    return {"sent": False, "error": None, "email": ""}


@view_config(route_name="dashboard.forgot", renderer="dashboard/forgot.html",
             request_method="POST")
def forgot(request) -> dict:
    email = normalise_email(field(request, "email", 254))
    if not is_valid_email(email):
        request.response.status_int = 400
        return {"sent": False, "error": "Enter a valid email address.", "email": email}
    limits = request.registry["saas.rate_limits"]
    # Per client IP: a refusal here says nothing about the address.
    enforce(request, request.rate_limiter.check(
        None, [(limits["account_mail_ip"], client_ip(request))]))
    # Per address: beyond it, the same answer and nothing sent (no mail bombing).
    deliver = request.rate_limiter.check(None, [(limits["account_mail_to"], email)]).allowed
    # The task finds the member (if any), issues the link and writes the audit row.
    queue_reset(request, email, deliver=deliver)
    # Nothing of the address in the answer: the page is the same for every one.
    return {"sent": True, "error": None, "email": "", "minutes": RESET_MINUTES}


def _invalid(request) -> dict:
    request.response.status_int = 404
    return {"valid": False, "error": None}


@view_config(route_name="dashboard.reset", renderer="dashboard/reset.html",
             request_method="GET")
def reset_form(request) -> dict:
    link = presented_link(request, LinkPurpose.RESET_PASSWORD)
    if link is None:
        return _invalid(request)
    return {"valid": True, "error": None, "email": request.db.get(Member, link.member_id).email}


@view_config(route_name="dashboard.reset", renderer="dashboard/reset.html",
             request_method="POST")
def reset(request) -> dict | HTTPSeeOther:
    link = presented_link(request, LinkPurpose.RESET_PASSWORD)
    if link is None:
        return _invalid(request)
    member = request.db.get(Member, link.member_id)
    password = new_password_field(request)
    problem = password_problem(password, email=member.email)
    if problem:
        request.response.status_int = 400
        return {"valid": True, "error": problem, "email": member.email}
    if not claim_link(request.db, link):
        return _invalid(request)
    now = utcnow()
    set_password(request.passwords, member, password, now)
    mark_verified(member, now)  # the link reached the address
    end_all_sessions(request, member.id)
    record_event(request.db, AuditType.MEMBER_PASSWORD_RESET, tenant_id=member.tenant_id,
                 request=request, details={"member_email": member.email})
    mail_password_changed(request_mailer(request), member)
    if request.member is not None:
        forget(request)
    request.session.flash("Your password was changed. Sign in with the new one.")
    return HTTPSeeOther(request.route_url("dashboard.signin"))
