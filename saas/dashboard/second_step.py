"""The sign-in's second step: after a right password, a member with a second
factor gives a code (authenticator app or recovery code) or uses a passkey.

Until then the session is only *pending*: it carries the member's id under its
own key (never the signed-in key ``member_id``), valid for ``PENDING_SECONDS``
and ``MAX_TRIES`` wrong answers; a pending session is signed in by nothing
else. Passing signs the member in under a fresh session id (``remember``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import remember
from pyramid.view import view_config

from saas.accounts.passkeys import authentication_options
from saas.accounts.second_factor import allowed, check_code, check_passkey
from saas.accounts.step_up import mark_fresh
from saas.accounts.totp import confirmed_totp
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.dashboard.common import field
from saas.dashboard_sessions import COOKIE_NAME, MEMBER_KEY, SIGNED_IN_AT
from saas.tenants.models import Member

PENDING = "pending_signin"
PENDING_SECONDS = 300
MAX_TRIES = 5
WRONG_CODE = "That code is not right."
EXPIRED = "Your sign-in took too long or had too many wrong codes; sign in again."


def begin_second_step(request, member: Member, next_url: str) -> HTTPSeeOther:
    """Park the member half signed in and send them to the second step."""
    request.session.rotate()  # the half-signed-in session gets its own id
    # A session signed in as someone else before is not anymore.
    request.session.pop(MEMBER_KEY, None)
    request.session.pop(SIGNED_IN_AT, None)
    request.session[PENDING] = {"member": str(member.id), "until": time.time() + PENDING_SECONDS,
                                "next": next_url, "tries": 0}
    return HTTPSeeOther(request.route_url("dashboard.signin.second"))


def _pending(request) -> tuple[dict[str, Any], Member] | None:
    if COOKIE_NAME not in request.cookies:
        return None
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        return None
    try:
        member = request.db.get(Member, uuid.UUID(pending["member"]))
    except (KeyError, ValueError):
        return None
    return (pending, member) if member is not None else None


def _start_over(request) -> HTTPSeeOther:
    request.session.pop(PENDING, None)
    request.session.flash(EXPIRED)
    return HTTPSeeOther(request.route_url("dashboard.signin"))


def _page(request, member: Member, **extra: Any) -> dict[str, Any]:
    page = {"error": None, "email": member.email,
            "has_totp": confirmed_totp(request.db, member) is not None,
            "passkey_options": authentication_options(request.registry.settings,
                                                      request.session, request.db, member)}
    page.update(extra)
    return page


def _finish(request, member: Member, pending: dict[str, Any], how: str) -> HTTPSeeOther:
    request.session.pop(PENDING, None)
    remember(request, member.id)  # a fresh session id, signed in from now
    mark_fresh(request.session)  # the factor was just given: step-up is fresh
    record_event(request.db, AuditType.MEMBER_SIGNED_IN, tenant_id=member.tenant_id,
                 request=request, details={"member_email": member.email, "second_factor": how})
    return HTTPSeeOther(pending["next"])


def _refused(request, member: Member, pending: dict[str, Any], message: str,
             status: int) -> dict[str, Any] | HTTPSeeOther:
    pending["tries"] = pending.get("tries", 0) + 1
    if pending["tries"] >= MAX_TRIES:
        return _start_over(request)
    request.session[PENDING] = pending
    request.response.status_int = status
    return _page(request, member, error=message)


def _throttled(request, member: Member) -> dict[str, Any] | None:
    decision = allowed(request, member)
    if decision.allowed:
        return None
    seconds = max(1, decision.retry_after)
    request.response.status_int = 429
    request.response.headers["Retry-After"] = str(seconds)
    return _page(request, member, error=f"Too many attempts. Try again in {seconds} "
                                        f"second{'' if seconds == 1 else 's'}.")


@view_config(route_name="dashboard.signin.second", renderer="dashboard/signin_second.html",
             request_method="GET")
def second_step_page(request) -> dict | HTTPSeeOther:
    found = _pending(request)
    if found is None:
        return HTTPSeeOther(request.route_url("dashboard.signin"))
    return _page(request, found[1])


@view_config(route_name="dashboard.signin.second", renderer="dashboard/signin_second.html",
             request_method="POST")
def second_step(request) -> dict | HTTPSeeOther:
    return _answer(request, WRONG_CODE, lambda member: check_code(
        request, member, field(request, "code", 64).strip()))


@view_config(route_name="dashboard.signin.passkey", renderer="dashboard/signin_second.html",
             request_method="POST")
def second_step_passkey(request) -> dict | HTTPSeeOther:
    return _answer(request, "The passkey was not accepted.", lambda member: "passkey" if (
        check_passkey(request, member, field(request, "credential", 64 * 1024))) else None)


def _answer(request, refusal: str, check) -> dict | HTTPSeeOther:
    """One answer to the pending second step: ``check(member)`` names the factor
    that passed (for the audit) or is None; throttled like every guess."""
    found = _pending(request)
    if found is None:
        return _start_over(request)
    pending, member = found
    throttled = _throttled(request, member)
    if throttled is not None:
        return throttled
    how = check(member)
    if how is None:
        return _refused(request, member, pending, refusal, 401)
    return _finish(request, member, pending, how)
