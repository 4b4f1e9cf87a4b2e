"""What the dashboard's views share: form fields, audit rows, passwords, page globals."""

from __future__ import annotations

import functools
from typing import Any

from pyramid.events import BeforeRender, subscriber

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


def field(request, name: str, limit: int = 1024) -> str:
    """A posted text field, cut to ``limit`` characters ('' when absent)."""
    return request.POST.get(name, "")[:limit]


def checked(request, name: str) -> bool:
    """A posted checkbox: present means on."""
    return name in request.POST


def password_confirmed(request) -> bool:
    """The signed-in member re-entered their own password."""
    return request.passwords.verify(request.member.password_hash, field(request, "password"))


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
