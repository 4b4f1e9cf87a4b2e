"""The member's second factors: an authenticator app (TOTP), passkeys and
recovery codes; the step-up page; the page globals the forms ask.

Enrolling or removing a factor ends the member's other sessions and keeps this
one under a fresh id (as a password change does). Adding a factor when one
exists, removing one and new recovery codes need a fresh second factor.
"""

from __future__ import annotations

from typing import Any

from pyramid.events import BeforeRender, subscriber
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.accounts.factors import drop_codes_if_no_factor, has_second_factor, needs_enrolment
from saas.accounts.passkeys import (
    MAX_NAME,
    PasskeyRefused,
    authentication_options,
    passkeys_of,
    register,
    registration_options,
    remove_passkey,
)
from saas.accounts.recovery import issue_codes, remaining_codes
from saas.accounts.second_factor import PENALTY, allowed, check_passkey
from saas.accounts.step_up import mark_fresh, second_factor_fresh, step_up_needed
from saas.accounts.totp import (
    accept_code,
    confirm,
    confirmed_totp,
    pending_totp,
    provisioning_uri,
    qr_svg,
    seed,
    start_enrolment,
)
from saas.audit.types import AuditType
from saas.dashboard.account import _keep_this_session
from saas.dashboard.common import audit, field, no_store
from saas.db import utcnow
from saas.security import Permission

STEP_UP = ("Confirm it is you first: enter a code from your authenticator app or a "
           "recovery code, or use a passkey.")


def _page(request, **extra: Any) -> dict[str, Any]:
    db, member = request.db, request.member
    pending = pending_totp(db, member)
    enrolment = None
    if pending is not None:
        secret = seed(request.secret_box, pending)
        enrolment = {"secret": secret, "qr": qr_svg(provisioning_uri(secret, member.email))}
    page = {"me": member, "totp": confirmed_totp(db, member), "enrolment": enrolment,
            "passkeys": passkeys_of(db, member), "remaining_codes": remaining_codes(db, member),
            "required": needs_enrolment(db, member), "recovery_codes": None,
            "errors": {}, "values": {},
            "passkey_options": registration_options(request.registry.settings,
                                                    request.session, db, member)}
    page.update(extra)
    return page


def _refuse(request, status: int, **errors: str) -> dict[str, Any]:
    request.response.status_int = status
    return _page(request, errors=errors)


def _credentials_changed(request, context, type_: str, **details: Any) -> int:
    """Other sessions end, this one goes on under a new id; audited."""
    member = request.member
    now = utcnow()
    member.sessions_valid_after = now
    ended = _keep_this_session(request, member, now)
    mark_fresh(request.session)
    audit(request, context, type_,
          details={"member_email": member.email, "sessions_ended": ended, **details})
    return ended


def _codes_page(request, codes: list[str], message: str) -> dict[str, Any]:
    no_store(request)
    return _page(request, recovery_codes=codes, notice=message)


@view_config(route_name="dashboard.account.factors", renderer="dashboard/account_factors.html",
             request_method="GET", permission=Permission.VIEW)
def factors_page(context, request) -> dict:
    return _page(request)


@view_config(route_name="dashboard.account.totp.start", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def totp_start(context, request) -> dict | HTTPSeeOther:
    if confirmed_totp(request.db, request.member) is not None:
        return _refuse(request, 409, totp="Remove the authenticator app you have first.")
    if not second_factor_fresh(request):
        return _refuse(request, 401, totp=STEP_UP)
    start_enrolment(request.db, request.secret_box, request.member)
    return HTTPSeeOther(request.route_url("dashboard.account.factors") + "#totp")


@view_config(route_name="dashboard.account.totp.confirm", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def totp_confirm(context, request) -> dict | HTTPSeeOther:
    db, member = request.db, request.member
    factor = pending_totp(db, member)
    if factor is None:
        return HTTPSeeOther(request.route_url("dashboard.account.factors"))
    if not allowed(request, member).allowed:
        return _refuse(request, 429, totp_code="Too many attempts; wait a moment.")
    if not accept_code(db, request.secret_box, factor, field(request, "totp_code", 64)):
        request.rate_limiter.record_failure(None, PENALTY, str(member.id))
        return _refuse(request, 401, totp_code="That code is not right: enter the six digits "
                                               "your app shows now.")
    request.rate_limiter.reset(None, PENALTY, str(member.id))
    first = not has_second_factor(db, member)
    confirm(factor, utcnow())
    db.flush()
    _credentials_changed(request, context, AuditType.MEMBER_SECOND_FACTOR_ENROLLED,
                         factor="totp")
    if first or remaining_codes(db, member) == 0:
        return _codes_page(request, issue_codes(db, member),
                           "Your authenticator app is set up. Keep these recovery codes.")
    request.session.flash("Your authenticator app is set up.")
    return HTTPSeeOther(request.route_url("dashboard.account.factors"))


@view_config(route_name="dashboard.account.totp.remove", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def totp_remove(context, request) -> dict | HTTPSeeOther:
    db, member = request.db, request.member
    factor = confirmed_totp(db, member)
    if factor is None:
        return HTTPSeeOther(request.route_url("dashboard.account.factors"))
    if not second_factor_fresh(request):
        return _refuse(request, 401, totp_remove=STEP_UP)
    db.delete(factor)
    db.flush()
    drop_codes_if_no_factor(db, member)
    _credentials_changed(request, context, AuditType.MEMBER_SECOND_FACTOR_REMOVED,
                         factor="totp")
    request.session.flash("The authenticator app is removed; your other sessions are "
                          "signed out.")
    return HTTPSeeOther(request.route_url("dashboard.account.factors"))


@view_config(route_name="dashboard.account.recovery", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def recovery_regenerate(context, request) -> dict | HTTPSeeOther:
    db, member = request.db, request.member
    if not has_second_factor(db, member):
        return HTTPSeeOther(request.route_url("dashboard.account.factors"))
    if not second_factor_fresh(request):
        return _refuse(request, 401, recovery=STEP_UP)
    codes = issue_codes(db, member)
    audit(request, context, AuditType.MEMBER_RECOVERY_CODES_REGENERATED,
          details={"member_email": member.email})
    return _codes_page(request, codes, "New recovery codes: the old ones no longer work.")


@view_config(route_name="dashboard.account.passkeys", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def passkey_add(context, request) -> dict | HTTPSeeOther:
    db, member = request.db, request.member
    name = field(request, "passkey_name", MAX_NAME).strip()
    if not name:
        return _refuse(request, 400, passkey_name="Name the passkey (e.g. “Work laptop”).")
    if not second_factor_fresh(request):
        return _refuse(request, 401, passkey_name=STEP_UP)
    first = not has_second_factor(db, member)
    try:
        key = register(request.registry.settings, request.session, db, member,
                       field(request, "credential", 64 * 1024), name)
    except PasskeyRefused:
        return _refuse(request, 400, passkey_name="The passkey could not be added; try again.")
    _credentials_changed(request, context, AuditType.MEMBER_SECOND_FACTOR_ENROLLED,
                         factor="passkey", name=key.name)
    if first or remaining_codes(db, member) == 0:
        return _codes_page(request, issue_codes(db, member),
                           f"Passkey “{key.name}” added. Keep these recovery codes.")
    request.session.flash(f"Passkey “{key.name}” added.")
    return HTTPSeeOther(request.route_url("dashboard.account.factors"))


@view_config(route_name="dashboard.account.passkey.remove", request_method="POST",
             renderer="dashboard/account_factors.html", permission=Permission.VIEW)
def passkey_remove(context, request) -> dict | HTTPSeeOther:
    db, member = request.db, request.member
    if not second_factor_fresh(request):
        return _refuse(request, 401, passkeys=STEP_UP)
    key = remove_passkey(db, member, request.matchdict["passkey_id"])
    if key is None:
        return HTTPSeeOther(request.route_url("dashboard.account.factors"))
    drop_codes_if_no_factor(db, member)
    _credentials_changed(request, context, AuditType.MEMBER_SECOND_FACTOR_REMOVED,
                         factor="passkey", name=key.name)
    request.session.flash(f"Passkey “{key.name}” removed; your other sessions are signed out.")
    return HTTPSeeOther(request.route_url("dashboard.account.factors"))


def _back_to(request) -> str:
    target = request.params.get("next", "")[:512]
    if target.startswith("/dashboard") and not target.startswith("//") \
            and "\\" not in target and "\r" not in target and "\n" not in target:
        return request.application_url + target
    return request.route_url("dashboard.apps")


def _step_up_page(request, **extra: Any) -> dict[str, Any]:
    member = request.member
    page = {"error": None, "next": request.params.get("next", "")[:512],
            "has_totp": confirmed_totp(request.db, member) is not None,
            "passkey_options": authentication_options(request.registry.settings,
                                                      request.session, request.db, member)}
    page.update(extra)
    return page


@view_config(route_name="dashboard.step_up", renderer="dashboard/step_up.html",
             request_method="GET", permission=Permission.VIEW)
def step_up_page(context, request) -> dict | HTTPSeeOther:
    if not step_up_needed(request):
        return HTTPSeeOther(_back_to(request))
    return _step_up_page(request)


@view_config(route_name="dashboard.step_up", renderer="dashboard/step_up.html",
             request_method="POST", permission=Permission.VIEW)
def step_up_code(context, request) -> dict | HTTPSeeOther:
    if second_factor_fresh(request):
        return HTTPSeeOther(_back_to(request))
    request.response.status_int = 401
    return _step_up_page(request, error="That code is not right (or you tried too often: "
                                        "wait a moment).")


@view_config(route_name="dashboard.step_up.passkey", renderer="dashboard/step_up.html",
             request_method="POST", permission=Permission.VIEW)
def step_up_passkey(context, request) -> dict | HTTPSeeOther:
    member = request.member
    if allowed(request, member).allowed and check_passkey(
            request, member, field(request, "credential", 64 * 1024)):
        mark_fresh(request.session)
        return HTTPSeeOther(_back_to(request))
    request.response.status_int = 401
    return _step_up_page(request, error="The passkey was not accepted.")


@subscriber(BeforeRender)
def step_up_globals(event) -> None:
    """``step_up_needed()`` for the forms of sensitive actions (asked lazily)."""
    request = event.get("request")
    route = getattr(request, "matched_route", None) if request is not None else None
    if route is None or not route.name.startswith("dashboard."):
        return
    event.setdefault("step_up_needed", lambda: step_up_needed(request))
