"""Email verification: the mailed link, and sending it again from the banner."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.links import claim_link
from saas.accounts.mails import mail_verification, request_mailer
from saas.accounts.models import LinkPurpose
from saas.accounts.services import mark_verified
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.dashboard.common import presented_link
from saas.db import utcnow
from saas.security import Permission
from saas.tenants.models import Member

RESEND_WAIT = "A link was sent a moment ago; check your inbox (and spam folder) first."


@view_config(route_name="dashboard.verify", renderer="dashboard/account_link.html",
             request_method="GET")
def verify(request) -> dict | HTTPSeeOther:
    link = presented_link(request, LinkPurpose.VERIFY_EMAIL)
    if link is None or not claim_link(request.db, link):
        request.response.status_int = 404
        return {"kind": "invalid"}
    member = request.db.get(Member, link.member_id)
    if mark_verified(member, utcnow()):
        record_event(request.db, AuditType.MEMBER_EMAIL_VERIFIED, tenant_id=member.tenant_id,
                     request=request, details={"member_email": member.email})
    if request.member is not None and request.member.id == member.id:
        request.session.flash("Thank you: your email address is verified.")
        return HTTPSeeOther(request.route_url("dashboard.apps"))
    return {"kind": "verified", "email": member.email}


@view_config(route_name="dashboard.account.verify.resend", request_method="POST",
             permission=Permission.VIEW)
def resend(context, request) -> HTTPSeeOther:
    member = request.member
    back = request.route_url("dashboard.account")
    if member.email_verified_at is not None:
        request.session.flash("Your email address is verified already.")
        return HTTPSeeOther(back)
    limit = request.registry["saas.rate_limits"]["account_mail_to"]
    if not request.rate_limiter.check(None, [(limit, f"member:{member.id}")]).allowed:
        request.session.flash(RESEND_WAIT)
        return HTTPSeeOther(back)
    mail_verification(request_mailer(request), member)
    request.session.flash(f"We sent a new link to {member.email}.")
    return HTTPSeeOther(back)
