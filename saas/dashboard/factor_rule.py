"""The tenant rule "every member needs a second factor": the owner's switch,
and the gate that sends a member without one to enrolment.

While the rule holds and the signed-in member has no second factor, every
dashboard page but enrolment (and signing out) answers with a redirect to
``/dashboard/account/second-factor``: the member can do nothing else.
"""

from __future__ import annotations

from pyramid.events import ContextFound, subscriber
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.factors import has_second_factor, needs_enrolment
from saas.accounts.step_up import second_factor_fresh
from saas.audit.types import AuditType
from saas.dashboard.common import audit, checked
from saas.security import Permission

# What a member who must enrol may still reach.
ENROLMENT_ROUTES = frozenset({
    "dashboard.signout", "dashboard.account.factors", "dashboard.account.totp.start",
    "dashboard.account.totp.confirm", "dashboard.account.passkeys",
    "dashboard.account.verify.resend", "dashboard.verify", "dashboard.email.confirm",
    "dashboard.reset", "dashboard.signin", "dashboard.signin.second",
    "dashboard.signin.passkey", "dashboard.dev.mail", "dashboard.dev.mail.message",
})


@subscriber(ContextFound)
def enrolment_gate(event) -> None:
    request = event.request
    route = getattr(request, "matched_route", None)
    if route is None or not route.name.startswith("dashboard.") \
            or route.name in ENROLMENT_ROUTES:
        return
    member = request.member
    if member is not None and needs_enrolment(request.db, member):
        request.session.flash("Your organisation requires a second factor: set one up to "
                              "go on.")
        raise HTTPSeeOther(request.route_url("dashboard.account.factors"))


@view_config(route_name="dashboard.members.factor_rule", request_method="POST",
             permission=Permission.MANAGE_MEMBERS)
def factor_rule(context, request) -> HTTPSeeOther:
    member = request.member
    tenant = member.tenant
    required = checked(request, "require_second_factor")
    back = HTTPSeeOther(request.route_url("dashboard.members") + "#security")
    if required == tenant.require_second_factor:
        return back
    if required and not has_second_factor(request.db, member):
        request.session.flash("Set up a second factor for yourself first "
                              "(Account → Second factors).")
        return back
    if not second_factor_fresh(request):
        request.session.flash("Confirm it is you first (your second factor), then change "
                              "the rule again.")
        return HTTPSeeOther(request.route_url("dashboard.step_up",
                                              _query={"next": "/dashboard/members"}))
    tenant.require_second_factor = required
    audit(request, context, AuditType.TENANT_SECOND_FACTOR_RULE_CHANGED,
          details={"require_second_factor": required, "member_email": member.email})
    request.session.flash("Every member now needs a second factor." if required
                          else "A second factor is now up to each member.")
    return back
