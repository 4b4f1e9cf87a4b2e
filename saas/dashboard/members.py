"""The tenant's members: list, invite (a link to pass on), change roles, remove."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import forget
from pyramid.view import view_config

from saas.accounts.step_up import second_factor_fresh
from saas.audit.types import AuditType
from saas.dashboard.common import STEP_UP, audit, field, no_store, verified_email_required
from saas.security import Permission
from saas.tenants.invites import INVITE_LIFETIME, create_invite, pending_invites
from saas.tenants.members import LastOwner, change_role, members_of_tenant, remove_member
from saas.tenants.models import Role
from saas.tenants.services import EmailTaken, is_valid_email

LAST_OWNER = "A tenant needs at least one owner: make someone else an owner first."


def _page(context, request, **extra: Any) -> dict[str, Any]:
    page = {"members": members_of_tenant(request.db, context.tenant_id),
            "invites": pending_invites(request.db, context.tenant_id),
            "roles": [role.value for role in Role], "me": request.member,
            "is_owner": bool(request.has_permission(Permission.MANAGE_MEMBERS)),
            "invite_link": None, "errors": {}, "values": {},
            "invite_days": INVITE_LIFETIME.days}
    page.update(extra)
    return page


def _role(request) -> Role | None:
    try:
        return Role(field(request, "role", 16))
    except ValueError:
        return None


@view_config(route_name="dashboard.members", renderer="dashboard/members.html",
             request_method="GET", permission=Permission.VIEW)
def members_page(context, request) -> dict:
    return _page(context, request)


@view_config(route_name="dashboard.members.invite", renderer="dashboard/members.html",
             request_method="POST", permission=Permission.MANAGE,
             decorator=verified_email_required)
def invite(context, request) -> dict:
    values = {"email": field(request, "email", 254).strip(), "role": field(request, "role", 16)}
    role, errors = _role(request), {}
    if not is_valid_email(values["email"]):
        errors["email"] = "Enter a valid email address."
    if role is None:
        errors["role"] = "Choose owner, admin or viewer."
    elif role == Role.OWNER and not request.has_permission(Permission.MANAGE_MEMBERS):
        errors["role"] = "Only owners can invite owners."
    if not errors and not second_factor_fresh(request):
        errors["second_factor"] = STEP_UP
    if not errors:
        try:
            created, token = create_invite(request.db, request.member, values["email"], role)
        except EmailTaken:
            errors["email"] = "This email belongs to a member already (here or elsewhere)."
        else:
            audit(request, context, AuditType.MEMBER_INVITED,
                  details={"email": created.email, "role": created.role.value})
            no_store(request)
            link = request.route_url("dashboard.invite", token=token)
            return _page(context, request, invite_link={"email": created.email, "url": link})
    request.response.status_int = 400
    return _page(context, request, errors=errors, values=values)


@view_config(route_name="dashboard.member.role", renderer="dashboard/members.html",
             request_method="POST", permission=Permission.MANAGE_MEMBERS)
def member_role(context, request) -> dict | HTTPSeeOther:
    target, role = context.target, _role(request)
    if role is None:
        request.response.status_int = 400
        return _page(context, request, errors={str(target.id): "Choose a role."})
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _page(context, request, errors={str(target.id): STEP_UP})
    try:
        old = change_role(request.db, target, role)
    except LastOwner:
        request.response.status_int = 400
        return _page(context, request, errors={str(target.id): LAST_OWNER})
    if old is not None:
        audit(request, context, AuditType.MEMBER_ROLE_CHANGED,
              details={"email": target.email, "from": old.value, "to": role.value})
        request.session.flash(f"{target.email} is now {role.value}.")
    return HTTPSeeOther(request.route_url("dashboard.members"))


@view_config(route_name="dashboard.member.remove", renderer="dashboard/members.html",
             request_method="POST", permission=Permission.MANAGE_MEMBERS)
def member_remove(context, request) -> dict | HTTPSeeOther:
    target = context.target
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return _page(context, request, errors={str(target.id): STEP_UP})
    try:
        remove_member(request.db, target)
    except LastOwner:
        request.response.status_int = 400
        return _page(context, request, errors={str(target.id): LAST_OWNER})
    audit(request, context, AuditType.MEMBER_REMOVED,
          details={"email": target.email, "role": target.role.value})
    if target.id == request.member.id:
        forget(request)
        return HTTPSeeOther(request.route_url("dashboard.signin"))
    request.session.flash(f"{target.email} removed.")
    return HTTPSeeOther(request.route_url("dashboard.members"))


@view_config(route_name="dashboard.invite.revoke", request_method="POST",
             permission=Permission.MANAGE)
def invite_revoke(context, request) -> HTTPSeeOther:
    invite = context.invite
    request.db.delete(invite)
    audit(request, context, AuditType.MEMBER_INVITE_REVOKED, details={"email": invite.email})
    request.session.flash(f"The invitation for {invite.email} no longer works.")
    return HTTPSeeOther(request.route_url("dashboard.members"))
