"""Opening an invitation link: set a password, join the tenant, be signed in."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import remember
from pyramid.view import view_config

from saas.accounts.mails import mail_verification, request_mailer
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.dashboard.common import new_password_field
from saas.passwords import password_problem
from saas.tenants.invites import InviteUnusable, accept_invite, invite_by_token
from saas.tenants.models import Invite
from saas.tenants.services import EmailTaken


def _private(request) -> None:
    # The token is in the URL: keep it out of caches and other sites' Referer.
    request.response.headers["Cache-Control"] = "no-store"
    request.response.headers["Referrer-Policy"] = "no-referrer"


def _form(request, invite: Invite | None, error: str | None = None) -> dict[str, Any]:
    _private(request)
    if invite is None:
        request.response.status_int = 404
    elif error:
        request.response.status_int = 400
    return {"invite": invite, "error": error}


@view_config(route_name="dashboard.invite", renderer="dashboard/invite.html",
             request_method="GET")
def invite_form(request) -> dict:
    return _form(request, invite_by_token(request.db, request.matchdict["token"]))


@view_config(route_name="dashboard.invite", renderer="dashboard/invite.html",
             request_method="POST")
def invite_accept(request) -> dict | HTTPSeeOther:
    invite = invite_by_token(request.db, request.matchdict["token"])
    if invite is None:
        return _form(request, None)
    password = new_password_field(request)
    problem = password_problem(password, email=invite.email)
    if problem:
        return _form(request, invite, problem)
    try:
        member = accept_invite(request.db, request.passwords, invite, password)
    except InviteUnusable:
        return _form(request, None)
    except EmailTaken:
        return _form(request, invite, "An account with this email exists already.")
    record_event(request.db, AuditType.MEMBER_JOINED, tenant_id=member.tenant_id, request=request,
                 details={"email": member.email, "role": member.role.value})
    mail_verification(request_mailer(request), member)
    remember(request, member.id)
    request.session.flash(f"Welcome to {invite.tenant.name}. You are signed in.")
    return HTTPSeeOther(request.route_url("dashboard.apps"))
