"""An app's end users: list and search, read, disable, enable, revoke sessions, delete.

The disabled flag and the sessions live in Redis for the login path; the
services update both stores in the same request (``saas.users.services``).
(No CSRF: bearer-key API, see ``saas.manage.apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.manage.errors import invalid_cursor
from saas.manage.params import cursor_param, limit_param, text_param
from saas.pagination import BadCursor
from saas.security import Permission
from saas.tenancy.contexts import AppContext, UserContext
from saas.tenancy.users import delete_user, revoke_sessions, set_disabled
from saas.users.services import MAX_PAGE, list_users, user_as_dict

DEFAULT_PAGE = 50


@view_config(route_name="manage.app.users", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def users(context: AppContext, request) -> dict[str, Any]:
    """Users by external id; ``q`` is a prefix of it."""
    try:
        page, next_cursor = list_users(
            request.read_db, context.app, query=text_param(request, "q"),
            limit=limit_param(request, default=DEFAULT_PAGE, maximum=MAX_PAGE),
            cursor=cursor_param(request),
        )
    except BadCursor as exc:
        raise invalid_cursor() from exc
    return {"users": [user_as_dict(user) for user in page], "next_cursor": next_cursor}


@view_config(route_name="manage.app.user", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: UserContext, request) -> dict[str, Any]:
    return user_as_dict(context.user)


@view_config(route_name="manage.app.user", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: UserContext, request) -> HTTPNoContent:
    delete_user(request, context.app, context.user)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.disable", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def disable(context: UserContext, request) -> HTTPNoContent:
    """Refuse the user's next logins and end their sessions at once (no-op if disabled)."""
    set_disabled(request, context.app, context.user, True)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.enable", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def enable(context: UserContext, request) -> HTTPNoContent:
    set_disabled(request, context.app, context.user, False)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.revoke_sessions", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def revoke(context: UserContext, request) -> HTTPNoContent:
    revoke_sessions(request, context.app, context.user)
    return HTTPNoContent()
