"""Sign-up, sign-in and sign-out; where anonymous and forbidden callers go."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.security import forget, remember
from pyramid.view import forbidden_view_config, view_config

from saas import proof_of_work
from saas.accounts.deferred import queue_sign_up
from saas.accounts.factors import has_second_factor
from saas.audit.services import record_event
from saas.audit.types import AuditType, Outcome
from saas.client_ip import client_ip
from saas.dashboard.common import field, new_password_field, too_many
from saas.dashboard.second_step import begin_second_step
from saas.passwords import password_problem
from saas.ratelimit import Decision
from saas.security import Permission
from saas.tenants.emails import normalise_email
from saas.tenants.services import authenticate, is_valid_email, member_by_email

SIGN_IN_FAILED = "Email or password is incorrect."
PENALTY = "signin"


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
def signup(request) -> dict | Response:
    """One answer for a new and a taken address: the "check your email" page.

    The request does the same work for both: it validates, rate-limits (per
    client IP and overall, before any hashing), hashes the password once and
    queues one sealed task message. The task creates the tenant and its
    (unverified) owner and mails the verification link, or, for a taken
    address, changes nothing and tells its owner by mail
    (``saas.accounts.deferred``). The new member is not signed in here (that
    would tell the two apart): they sign in as usual, before or after
    following the verification link.
    """
    values = {
        "tenant_name": field(request, "tenant_name", 200).strip(),
        "email": field(request, "email", 254).strip(),
    }
    password = new_password_field(request)
    errors = {}
    if not values["tenant_name"]:
        errors["tenant_name"] = "Enter your organisation's name."
    if not is_valid_email(values["email"]):
        errors["email"] = "Enter a valid email address."
    problem = password_problem(password, email=values["email"])
    if problem:
        errors["password"] = problem
    if errors:
        request.response.status_int = 400
        return {"errors": errors, "values": values}
    limits = request.registry["saas.rate_limits"]
    decision = request.rate_limiter.check(
        None, [(limits["signup_ip"], client_ip(request)), (limits["signup_all"], "")])
    if not decision.allowed:
        seconds = max(1, decision.retry_after)
        request.response.status_int = 429
        request.response.headers["Retry-After"] = str(seconds)
        return {"errors": {"form": f"Too many sign-ups from here. Try again in "
                                   f"{seconds} second{'' if seconds == 1 else 's'}."},
                "values": values}
    queue_sign_up(request, tenant_name=values["tenant_name"],
                  email=normalise_email(values["email"]),
                  password_hash=request.passwords.hash(password))
    return render_to_response("saas:templates/dashboard/signup_sent.html",
                              {"email": values["email"]}, request=request,
                              response=request.response)


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="GET")
def signin_form(request) -> dict:
    return {"error": None, "values": {}, "next": request.GET.get("next", ""), "challenge": None}


def _is_local_path(target: str) -> bool:
    # Printable ASCII only: a control character (CR/LF, NUL, NEL, U+2028 …) or a
    # space would split or break the Location header; a backslash is a slash
    # to some browsers.
    if not all("!" <= char <= "~" and char != "\\" for char in target):
        return False
    return target == "/dashboard" or target.startswith(("/dashboard/", "/dashboard?"))


def _safe_next(request, target: str) -> str:
    """Only local dashboard paths (never an open redirect); anything else, the dashboard."""
    if _is_local_path(target):
        return request.application_url + target
    return request.route_url("dashboard.apps")


CHALLENGE_NEEDED = ("Many wrong passwords were tried for this email lately, so signing in "
                    "to it now takes a short puzzle your browser solves (a second or two). "
                    "Enter your password again.")


def _ip_bucket(request, ip: str) -> list:
    return [(request.registry["saas.rate_limits"]["signin_ip"], ip)]


def _email_failures(request, email: str) -> list:
    return [(request.registry["saas.rate_limits"]["signin_email"], email)]


def _under_attack(request, email: str) -> bool:
    """Has this email's failure bucket run dry (many recent failures, from anywhere)?"""
    (limit, key), = _email_failures(request, email)
    return request.rate_limiter.available(None, limit, key) < 1


def cost_challenge_passed(request, email: str) -> bool:
    """The cost put on sign-in for an email under attack: a solved proof of work
    bound to the email (saas/proof_of_work.py). This is the one place a CAPTCHA
    would go instead: check its answer here and render its widget in
    signin.html where ``challenge`` is."""
    return proof_of_work.redeem(request, email, field(request, "pow_challenge", 64),
                                field(request, "pow_nonce", 32))


def _challenge_page(request, email: str, canonical: str) -> dict:
    bits = request.registry.settings["saas.signin.challenge_bits"]
    page = _signin_failed(request, email, "challenge_required", 401, CHALLENGE_NEEDED)
    page["challenge"] = proof_of_work.issue(request, canonical, bits)
    return page


def _signin_failed(request, email: str, reason: str, status: int, message: str) -> dict:
    known = member_by_email(request.db, email)
    record_event(
        request.db, AuditType.MEMBER_SIGN_IN_FAILED, outcome=Outcome.FAILURE,
        tenant_id=known.tenant_id if known else None, reason=reason, request=request,
    )
    request.response.status_int = status
    return {"error": message, "values": {"email": email}, "next": field(request, "next", 512),
            "challenge": None}


def _wait(request, email: str, decision: Decision) -> dict:
    seconds = max(1, decision.retry_after)
    request.response.headers["Retry-After"] = str(seconds)
    return _signin_failed(request, email, "rate_limited", 429, too_many(seconds))


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="POST")
def signin(request) -> dict | HTTPSeeOther:
    """Sign-in limits that a stranger cannot turn into a lock-out:

    * per client IP, charged before the password is checked (refunded on
      success): one address spraying emails is stopped, and only that address;
    * per (email, IP), the progressive penalty (waits of 1, 2, 4 … s, capped);
    * per email, from anywhere, FAILURES only: once many have failed lately,
      every attempt for that email must bring a solved proof of work (a cost,
      not a refusal), so the right password from a fresh address still works.
    """
    email = field(request, "email", 254).strip()
    canonical = normalise_email(email)
    ip = client_ip(request)
    who = f"{canonical}|{ip}"
    limiter = request.rate_limiter
    decision = limiter.check(None, _ip_bucket(request, ip))
    if not decision.allowed:
        return _wait(request, email, decision)
    if _under_attack(request, canonical) and not cost_challenge_passed(request, canonical):
        return _challenge_page(request, email, canonical)
    decision = limiter.penalty(None, PENALTY, who)
    if not decision.allowed:
        return _wait(request, email, decision)
    member = authenticate(request.db, request.passwords, email, field(request, "password"))
    if member is None:
        limiter.record_failure(None, PENALTY, who)
        limiter.check(None, _email_failures(request, canonical))  # empty already: a no-op
        return _signin_failed(request, email, "credentials_invalid", 401, SIGN_IN_FAILED)
    limiter.reset(None, PENALTY, who)
    # Only failures count: an office behind one NAT address can sign in all
    # morning, and a success gives back no more than its own charge.
    limiter.refund(None, _ip_bucket(request, ip))
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
