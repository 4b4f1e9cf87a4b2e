"""The error contract (docs/protocol.md §7): reason codes, JSON or HTML error answers.

Views raise :class:`ApiError`; the exception views here turn it (and Redis
outages, unknown routes and unexpected failures) into
``{"error", "error_description", "reason", "request_id"}`` with the right
status, or a readable HTML page when the client prefers HTML.
"""

from __future__ import annotations

import enum
import logging

import redis
import sqlalchemy.exc
from pyramid.httpexceptions import HTTPException
from pyramid.renderers import render_to_response
from pyramid.view import exception_view_config, notfound_view_config

log = logging.getLogger(__name__)


class Reason(enum.StrEnum):
    STATE_MISSING = "state_missing"
    STATE_UNKNOWN = "state_unknown"
    STATE_REPLAYED = "state_replayed"
    STATE_APP_MISMATCH = "state_app_mismatch"
    STATE_NOT_BOUND = "state_not_bound"
    # The binding cookie cannot have come back: the login started on another
    # host than this request's, or this request's is not saas.public_base_url's.
    HOST_MISMATCH = "host_mismatch"
    TOKEN_MISSING = "token_missing"
    TOKEN_MALFORMED = "token_malformed"
    TOKEN_ALG_NOT_ALLOWED = "token_alg_not_allowed"
    TOKEN_BAD_SIGNATURE = "token_bad_signature"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    TOKEN_TOO_OLD = "token_too_old"
    TOKEN_LIFETIME_TOO_LONG = "token_lifetime_too_long"
    TOKEN_REPLAYED = "token_replayed"
    USER_ID_MISSING = "user_id_missing"
    USER_ID_INVALID = "user_id_invalid"
    CLAIMS_INVALID = "claims_invalid"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TENANT_DENIED = "tenant_denied"
    TENANT_ERROR = "tenant_error"
    TENANT_UNREACHABLE = "tenant_unreachable"
    USER_DISABLED = "user_disabled"
    REDIRECT_URI_NOT_ALLOWED = "redirect_uri_not_allowed"
    PKCE_INVALID = "pkce_invalid"
    CODE_INVALID = "code_invalid"
    REFRESH_INVALID = "refresh_invalid"
    REFRESH_REUSED = "refresh_reused"
    SESSION_REVOKED = "session_revoked"
    RATE_LIMITED = "rate_limited"
    APP_NOT_FOUND = "app_not_found"
    FEATURE_DISABLED = "feature_disabled"
    STORE_UNAVAILABLE = "store_unavailable"
    # OpenID Connect (docs/oidc.md).
    CLIENT_ID_MISMATCH = "client_id_mismatch"
    INVALID_CLIENT = "invalid_client"
    LOGIN_REQUIRED = "login_required"
    UNSUPPORTED_RESPONSE_TYPE = "unsupported_response_type"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    # Not in the login contract, used by the service's own pages and APIs.
    NOT_FOUND = "not_found"
    # 403 on the dashboard: the member has not verified their email yet.
    EMAIL_UNVERIFIED = "email_unverified"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL = "internal"


class ManageReason(enum.StrEnum):
    """The management API's own reasons, beside the contract's (docs/management-api.md)."""

    INVALID_API_KEY = "invalid_api_key"  # 401: missing, unknown or revoked key
    UNKNOWN_FIELDS = "unknown_fields"  # 422: the body names fields that do not exist
    INVALID_VALUE = "invalid_value"  # 422: a field of the body has a refused value
    INVALID_BODY = "invalid_body"  # 400: the body is not a JSON object
    INVALID_PARAMETER = "invalid_parameter"  # 400: a query parameter is malformed
    INVALID_CURSOR = "invalid_cursor"  # 400: a cursor this API did not make
    FORBIDDEN = "forbidden"  # 403: the key may not do this (no such case today)


class ApiError(Exception):
    """An error answer of the contract: status, RFC 6749 code, reason."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: Reason | str,
        description: str = "",
        headers: dict[str, str] | None = None,
        links: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description or str(reason))
        self.status = status
        self.error = error
        self.reason = str(reason)
        self.description = description or str(reason).replace("_", " ")
        self.headers = headers or {}
        self.links = links or {}


# Pages a browser visits; every other /v1/ endpoint is an API that answers JSON.
BROWSER_ROUTES = frozenset({"flows.authorize", "flows.callback", "flows.hosted_login",
                            "oidc.end_session"})


def wants_json(request) -> bool:
    route = getattr(request.matched_route, "name", None)
    # The raw path: one that is not UTF-8 is refused, never decoded (saas.request_text).
    if request.environ.get("PATH_INFO", "").startswith("/v1/") and route not in BROWSER_ROUTES:
        return True
    best = request.accept.best_match(["text/html", "application/json"])
    return best == "application/json"


def heading(description: str) -> str:
    """The description as the error page's heading: its first letter capitalised
    unless it starts with a name that must be kept as written (``redirect_uri``,
    ``saas.public_base_url``, a URL); the rest is never changed ("6 KiB", "PKCE")."""
    first = description.split(" ", 1)[0]
    if not first or any(mark in first for mark in "_.:/"):
        return description
    return description[0].upper() + description[1:]


def render_error(request, error: ApiError):
    request.response.status_int = error.status
    for name, value in error.headers.items():
        request.response.headers[name] = value
    body = {
        "error": error.error,
        "error_description": error.description,
        "reason": error.reason,
        "request_id": getattr(request, "request_id", None),
        **error.links,
    }
    if wants_json(request):
        return render_to_response("json", body, request=request, response=request.response)
    return render_to_response(
        "saas:templates/error.html",
        dict(body, status=error.status, heading=heading(error.description)),
        request=request,
        response=request.response,
    )


@exception_view_config(ApiError)
def api_error_view(exc: ApiError, request):
    return render_error(request, exc)


@notfound_view_config()
def not_found_view(request):
    return render_error(request, ApiError(404, "not_found", Reason.NOT_FOUND, "not found"))


def _unavailable(request, exc: Exception, reason: Reason, what: str):
    log.error("%s unavailable: %s", what, exc.__class__.__name__)
    return render_error(request, ApiError(
        503, "temporarily_unavailable", reason,
        f"the {what} is unavailable, try again shortly", headers={"Retry-After": "5"},
    ))


@exception_view_config(redis.exceptions.ConnectionError)
@exception_view_config(redis.exceptions.TimeoutError)
def store_unavailable_view(exc, request):
    return _unavailable(request, exc, Reason.STORE_UNAVAILABLE, "session store")


@exception_view_config(sqlalchemy.exc.OperationalError)
@exception_view_config(sqlalchemy.exc.InterfaceError)
def database_unavailable_view(exc, request):
    return _unavailable(request, exc, Reason.DATABASE_UNAVAILABLE, "database")


@exception_view_config(HTTPException)
def http_exception_view(exc: HTTPException, request):
    # Redirects and other non-error HTTP exceptions pass through unchanged.
    if exc.status_int < 400:
        return exc
    reason = Reason.NOT_FOUND if exc.status_int == 404 else exc.title.lower().replace(" ", "_")
    return render_error(request, ApiError(exc.status_int, reason, reason, exc.detail or exc.title))


# Retryable errors (serialization failures, unique races) are left to
# pyramid_retry until its last attempt.
@exception_view_config(Exception, retryable_error=False)
@exception_view_config(Exception, last_retry_attempt=True)
def unexpected_error_view(exc, request):
    log.exception("unexpected error")
    return render_error(
        request, ApiError(500, "server_error", Reason.INTERNAL, "an unexpected error occurred")
    )
