"""An app's end users: search, read, disable or enable, revoke sessions, delete."""

from __future__ import annotations

import json
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from saas.dashboard.common import checked
from saas.pagination import BadCursor
from saas.security import Permission
from saas.tenancy.users import delete_user, revoke_sessions, set_disabled
from saas.users.services import list_users

PAGE_SIZE = 50


def pretty(value: Any) -> str:
    return json.dumps(value or {}, indent=2, sort_keys=True, ensure_ascii=False)


@view_config(route_name="dashboard.app.users", renderer="dashboard/app_users.html",
             request_method="GET", permission=Permission.VIEW)
def users_list(context, request) -> dict:
    query = request.GET.get("q", "")[:255].strip()
    cursor = request.GET.get("cursor", "")[:512] or None
    page = {"app": context.app, "tab": "users", "q": query, "cursor": cursor,
            "users": [], "next_cursor": None, "next_url": None, "error": None}
    try:
        page["users"], page["next_cursor"] = list_users(
            request.read_db, context.app, query=query, limit=PAGE_SIZE, cursor=cursor)
    except BadCursor:
        request.response.status_int = 400
        page["error"] = "That page link is not valid any more; start from the first page."
    search = {"q": query} if query else {}
    page["first_url"] = request.route_url("dashboard.app.users", app_id=context.app.app_id,
                                          _query=search)
    if page["next_cursor"]:
        page["next_url"] = request.route_url(
            "dashboard.app.users", app_id=context.app.app_id,
            _query={**search, "cursor": page["next_cursor"]})
    return page


def _user_page(context, error: str | None = None) -> dict:
    user = context.user
    return {"app": context.app, "tab": "users", "user": user, "error": error,
            "custom": pretty(user.custom), "profile": pretty(user.profile)}


@view_config(route_name="dashboard.app.user", renderer="dashboard/app_user.html",
             request_method="GET", permission=Permission.VIEW)
def user_detail(context, request) -> dict:
    return _user_page(context)


def _back(request, context, message: str) -> HTTPSeeOther:
    request.session.flash(message)
    return HTTPSeeOther(request.route_url(
        "dashboard.app.user", app_id=context.app.app_id, user_id=str(context.user.id)))


def _set_disabled(context, request, disabled: bool) -> HTTPSeeOther:
    user = context.user
    if not set_disabled(request, context.app, user, disabled):
        state = "disabled" if disabled else "enabled"
        return _back(request, context, f"{user.external_id} is {state} already.")
    if disabled:
        return _back(request, context, f"{user.external_id} is disabled and signed out.")
    return _back(request, context, f"{user.external_id} can log in again.")


@view_config(route_name="dashboard.app.user.disable", request_method="POST",
             permission=Permission.MANAGE)
def user_disable(context, request) -> HTTPSeeOther:
    return _set_disabled(context, request, True)


@view_config(route_name="dashboard.app.user.enable", request_method="POST",
             permission=Permission.MANAGE)
def user_enable(context, request) -> HTTPSeeOther:
    return _set_disabled(context, request, False)


@view_config(route_name="dashboard.app.user.revoke_sessions", request_method="POST",
             permission=Permission.MANAGE)
def user_revoke_sessions(context, request) -> HTTPSeeOther:
    user = context.user
    count = revoke_sessions(request, context.app, user)
    noun = "session" if count == 1 else "sessions"
    return _back(request, context, f"Revoked {count} {noun} of {user.external_id}.")


@view_config(route_name="dashboard.app.user.delete", renderer="dashboard/app_user.html",
             request_method="POST", permission=Permission.MANAGE)
def user_delete(context, request) -> dict | HTTPSeeOther:
    user = context.user
    if not checked(request, "confirm"):
        request.response.status_int = 400
        return _user_page(context, "Tick the box to confirm the deletion.")
    delete_user(request, context.app, user)
    request.session.flash(f"{user.external_id} deleted. A later login creates the user afresh.")
    return HTTPSeeOther(request.route_url("dashboard.app.users", app_id=context.app.app_id))
