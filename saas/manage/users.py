"""An app's end users: list and search, read, disable, enable, revoke sessions, delete.

The disabled flag and the sessions live in Redis for the login path; the
services update both stores in the same request (``saas.users.services``).
(No CSRF: bearer-key API, see ``saas.manage.apps``.)
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNoContent
from pyramid.view import view_config

from saas.manage.changes import audit
from saas.manage.contexts import AppScope, UserScope
from saas.manage.errors import invalid_cursor
from saas.manage.params import cursor_param, limit_param, text_param
from saas.pagination import BadCursor
from saas.security import Permission
from saas.users.services import (
    MAX_PAGE,
    delete_user,
    list_users,
    revoke_sessions,
    set_user_disabled,
    user_as_dict,
)

DEFAULT_PAGE = 50


@view_config(route_name="manage.app.users", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def users(context: AppScope, request) -> dict[str, Any]:
    """Users by external id; ``q`` is a prefix of it."""
    try:
        page, next_cursor = list_users(
            request.db, context.app, query=text_param(request, "q"),
            limit=limit_param(request, default=DEFAULT_PAGE, maximum=MAX_PAGE),
            cursor=cursor_param(request),
        )
    except BadCursor as exc:
        raise invalid_cursor() from exc
    return {"users": [user_as_dict(user) for user in page], "next_cursor": next_cursor}


@view_config(route_name="manage.app.user", request_method="GET", renderer="json",
             permission=Permission.VIEW)
def read(context: UserScope, request) -> dict[str, Any]:
    return user_as_dict(context.user)


@view_config(route_name="manage.app.user", request_method="DELETE",
             permission=Permission.MANAGE, require_csrf=False)
def delete(context: UserScope, request) -> HTTPNoContent:
    audit(request, "user.deleted", context.app, user=context.user)
    delete_user(request, context.app, context.user)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.disable", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def disable(context: UserScope, request) -> HTTPNoContent:
    """Refuse the user's next logins and end their sessions at once."""
    set_user_disabled(request, context.app, context.user, True)
    audit(request, "user.disabled", context.app, user=context.user)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.enable", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def enable(context: UserScope, request) -> HTTPNoContent:
    set_user_disabled(request, context.app, context.user, False)
    audit(request, "user.enabled", context.app, user=context.user)
    return HTTPNoContent()


@view_config(route_name="manage.app.user.revoke_sessions", request_method="POST",
             permission=Permission.MANAGE, require_csrf=False)
def revoke(context: UserScope, request) -> HTTPNoContent:
    count = revoke_sessions(request, context.app, context.user)
    audit(request, "session.revoked", context.app, user=context.user, details={"count": count})
    return HTTPNoContent()
