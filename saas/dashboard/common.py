"""What the dashboard's views share: form fields, audit rows, passwords, page globals."""

from __future__ import annotations

import functools
from typing import Any

from pyramid.events import BeforeRender, subscriber

from saas.accounts.links import usable_link
from saas.accounts.models import AccountLink, LinkPurpose
from saas.accounts.step_up import second_factor_fresh
from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.errors import ApiError, Reason
from saas.security import Permission
from saas.tenancy.audit import audit as tenant_audit

WRONG_PASSWORD = "That password is not right."
STEP_UP = ("confirm it is you first: enter a code from your authenticator app or a "
           "recovery code, or use a passkey")
UNVERIFIED = ("verify your email address first: open the link we mailed you "
              "(the banner at the top of the page sends a new one)")
# The penalty of re-entered passwords, per member (saas.ratelimit).
REAUTH_PENALTY = "reauth"


def too_many(seconds: int) -> str:
    """The wait message of sign-in and of the re-authentication gate."""
    return f"Too many attempts. Try again in {seconds} second{'' if seconds == 1 else 's'}."


def field(request, name: str, limit: int = 1024) -> str:
    """A posted text field, cut to ``limit`` characters ('' when absent)."""
    return request.POST.get(name, "")[:limit]


def new_password_field(request, name: str = "password") -> str:
    """A new password as posted, never cut (the body limit bounds it), so that an
    over-long one is refused rather than silently shortened."""
    return request.POST.get(name, "")


def checked(request, name: str) -> bool:
    """A posted checkbox: present means on."""
    return name in request.POST


def confirm_sensitive_action(request, name: str = "password") -> str | None:
    """None when the signed-in member has just proved it is them; otherwise the
    message to show beside the form, with the response's status set.

    The one gate of every action that hands out or widens power: revealing and
    rotating secrets (an app's, a webhook's), creating API keys (a key reads
    every secret), inviting members, changing roles and removing members. Today
    it is the member's password re-entered in the same form (field ``name``),
    then — when the member has a second factor — one given in the last five
    minutes or in the form's ``second_factor`` field. The account page's
    password and email changes use it for their current password too.

    Guesses are limited as at sign-in: after n failures in a row the next try
    waits 2^(n-1) s (capped, never a lock-out), per member, whatever the form
    or address; the right password waits too, so a wait tells nothing.
    """
    limiter, who = request.rate_limiter, str(request.member.id)
    decision = limiter.penalty(None, REAUTH_PENALTY, who)
    if not decision.allowed:
        seconds = max(1, decision.retry_after)
        request.response.status_int = 429
        request.response.headers["Retry-After"] = str(seconds)
        return too_many(seconds)
    if not request.passwords.verify(request.member.password_hash, field(request, name)):
        limiter.record_failure(None, REAUTH_PENALTY, who)
        request.response.status_int = 401
        return WRONG_PASSWORD
    limiter.reset(None, REAUTH_PENALTY, who)
    # Then a fresh second factor, when the member has one (saas.accounts.step_up).
    if not second_factor_fresh(request):
        request.response.status_int = 401
        return STEP_UP
    return None


def audit(request, context, type_: str, *, app: App | None = None,
          details: dict[str, Any] | None = None, **fields: Any) -> AuditEvent:
    """An audit row for a member's change with no shared service (``saas.tenancy``)."""
    return tenant_audit(request, type_, tenant_id=context.tenant_id,
                        app=app or getattr(context, "app", None), details=details, **fields)


def verified_email_required(view):
    """A view decorator (``@view_config(decorator=…)``): members who have not
    verified their email get a 403 page saying so. The one gate of revealing
    and rotating secrets, creating API keys and inviting members
    (docs/accounts.md); the role check runs before it."""

    @functools.wraps(view)
    def gated(context, request):
        member = request.member
        if member is not None and member.email_verified_at is None:
            raise ApiError(403, "forbidden", Reason.EMAIL_UNVERIFIED, UNVERIFIED)
        return view(context, request)

    return gated


def link_page_headers(request) -> None:
    """A page reached by a mailed link carries its token in the URL: keep it
    out of caches and out of other sites' Referer."""
    request.response.headers["Cache-Control"] = "no-store"
    request.response.headers["Referrer-Policy"] = "no-referrer"


def presented_link(request, purpose: LinkPurpose) -> AccountLink | None:
    """The usable link of ``purpose`` whose token is in the URL (``{token}``),
    on a page kept out of caches and Referers; None when it opens nothing."""
    link_page_headers(request)
    return usable_link(request.db, request.matchdict["token"], purpose)


def no_store(request) -> None:
    """Keep pages that show a secret out of every cache."""
    request.response.headers["Cache-Control"] = "no-store"


@subscriber(BeforeRender)
def dashboard_globals(event) -> None:
    """What every dashboard template may ask: may this member change things?"""
    request = event.get("request")
    route = getattr(request, "matched_route", None) if request is not None else None
    if route is None or not route.name.startswith("dashboard."):
        return
    # An error page may be rendered before the route's context was found.
    context = getattr(request, "context", None)
    event.setdefault("can_manage", context is not None
                     and bool(request.has_permission(Permission.MANAGE, context)))
