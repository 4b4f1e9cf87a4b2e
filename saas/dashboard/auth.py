"""Sign-up, sign-in and sign-out; where anonymous and forbidden callers go."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.security import forget, remember
from pyramid.view import forbidden_view_config, view_config

from saas.accounts.factors import has_second_factor
from saas.accounts.mails import mail_verification
from saas.audit.services import record_event
from saas.audit.types import AuditType, Outcome
from saas.client_ip import client_ip
from saas.dashboard.common import field
from saas.dashboard.second_step import begin_second_step
from saas.passwords import password_problem
from saas.ratelimit import Decision
from saas.security import Permission
from saas.tenants.services import (
    EmailTaken,
    authenticate,
    is_valid_email,
    member_by_email,
    sign_up,
)

SIGN_IN_FAILED = "Email or password is incorrect."
PENALTY = "signin"


def too_many(seconds: int) -> str:
    """The sign-in page's wait message ("1 second", "2 seconds")."""
    return f"Too many attempts. Try again in {seconds} second{'' if seconds == 1 else 's'}."


@view_config(route_name="home", request_method="GET")
def home(request) -> HTTPSeeOther:
    return HTTPSeeOther(request.route_url("dashboard.home"))


@forbidden_view_config()
def forbidden(request) -> Response:
    """Anonymous callers sign in first; members whose role forbids it get 403."""
    if request.member is None:
        # Come back to the page after signing in; a form's target is no page.
        query = {"next": request.path} if request.method == "GET" else {}
        return HTTPSeeOther(request.route_url("dashboard.signin", _query=query))
    request.response.status_int = 403
    return render_to_response(
        "saas:templates/error.html",
        {"status": 403, "error": "forbidden", "reason": "forbidden",
         "error_description": "Your role does not allow this.",
         "request_id": getattr(request, "request_id", None)},
        request=request,
        response=request.response,
    )


@view_config(route_name="dashboard.signup", renderer="dashboard/signup.html",
             request_method="GET")
def signup_form(request) -> dict:
    return {"errors": {}, "values": {}}


@view_config(route_name="dashboard.signup", renderer="dashboard/signup.html",
             request_method="POST")
def signup(request) -> dict | HTTPSeeOther:
    values = {
        "tenant_name": field(request, "tenant_name", 200).strip(),
        "email": field(request, "email", 254).strip(),
    }
    password = field(request, "password")
    errors = {}
    if not values["tenant_name"]:
        errors["tenant_name"] = "Enter your organisation's name."
    if not is_valid_email(values["email"]):
        errors["email"] = "Enter a valid email address."
    problem = password_problem(password)
    if problem:
        errors["password"] = problem
    if not errors:
        try:
            member = sign_up(
                request.db, request.passwords,
                tenant_name=values["tenant_name"], email=values["email"], password=password,
            )
        except EmailTaken:
            errors["email"] = "An account with this email exists already; sign in instead."
        else:
            record_event(request.db, AuditType.TENANT_CREATED, tenant_id=member.tenant_id,
                         request=request, details={"member_email": member.email})
            mail_verification(request, member)
            remember(request, member.id)
            request.session.flash("Welcome to Bridgekeeper. Create your first app.")
            return HTTPSeeOther(request.route_url("dashboard.apps"))
    request.response.status_int = 400
    return {"errors": errors, "values": values}


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="GET")
def signin_form(request) -> dict:
    return {"error": None, "values": {}, "next": request.GET.get("next", "")}


def _safe_next(request, target: str) -> str:
    # Only local dashboard paths: never an open redirect.
    if target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return request.application_url + target
    return request.route_url("dashboard.apps")


def _signin_buckets(request, email: str, ip: str) -> list:
    limits = request.registry["saas.rate_limits"]
    return [(limits["signin_ip"], ip), (limits["signin_email"], email)]


def _signin_allowed(request, email: str, ip: str) -> Decision:
    """Charge the per-IP and per-email buckets, then the progressive penalty of
    this email from this IP (waits of 1, 2, 4 … s, capped: never a lock-out).
    Charged before the password is checked, so concurrent guesses cannot race."""
    limiter = request.rate_limiter
    decision = limiter.check(None, _signin_buckets(request, email, ip))
    if decision.allowed:
        decision = limiter.penalty(None, PENALTY, f"{email}|{ip}")
    return decision


def _refund(request, email: str, ip: str) -> None:
    # A successful sign-in gives its charge back: only failures count, so an
    # office behind one NAT address can sign in all morning, and a success
    # refunds no more than its own charge (no bypass for an attacker's account).
    request.rate_limiter.refund(None, _signin_buckets(request, email, ip))


def _signin_failed(request, email: str, reason: str, status: int, message: str) -> dict:
    known = member_by_email(request.db, email)
    record_event(
        request.db, AuditType.MEMBER_SIGN_IN_FAILED, outcome=Outcome.FAILURE,
        tenant_id=known.tenant_id if known else None, reason=reason, request=request,
    )
    request.response.status_int = status
    return {"error": message, "values": {"email": email}, "next": field(request, "next", 512)}


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="POST")
def signin(request) -> dict | HTTPSeeOther:
    email = field(request, "email", 254).strip()
    ip = client_ip(request)
    who = f"{email.lower()}|{ip}"
    decision = _signin_allowed(request, email.lower(), ip)
    if not decision.allowed:
        seconds = max(1, decision.retry_after)
        request.response.headers["Retry-After"] = str(seconds)
        return _signin_failed(request, email, "rate_limited", 429,
                              too_many(seconds))
    member = authenticate(request.db, request.passwords, email, field(request, "password"))
    if member is None:
        request.rate_limiter.record_failure(None, PENALTY, who)
        return _signin_failed(request, email, "credentials_invalid", 401, SIGN_IN_FAILED)
    request.rate_limiter.reset(None, PENALTY, who)
    _refund(request, email.lower(), ip)
    if has_second_factor(request.db, member):  # not signed in until the second step passes
        return begin_second_step(request, member, _safe_next(request, field(request, "next", 512)))
    record_event(request.db, AuditType.MEMBER_SIGNED_IN, tenant_id=member.tenant_id,
                 request=request, details={"member_email": member.email})
    remember(request, member.id)
    return HTTPSeeOther(_safe_next(request, field(request, "next", 512)))


@view_config(route_name="dashboard.signout", request_method="POST")
def signout(request) -> HTTPSeeOther:
    forget(request)
    return HTTPSeeOther(request.route_url("dashboard.signin"))


@view_config(route_name="dashboard.home", request_method="GET", permission=Permission.VIEW)
def dashboard_home(request) -> HTTPSeeOther:
    return HTTPSeeOther(request.route_url("dashboard.apps"))
