"""Protections every response and request gets, whatever the view.

* Request bodies over 64 KiB are refused with 413 before anything parses them
  (docs/protocol.md §7), chunked bodies included; a malformed form body is a
  400 (and so is text that is not UTF-8, or a form in another charset:
  ``saas.request_text``).
* Security headers: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer`` (URLs here carry states and codes), and HSTS when the service
  runs behind https (``saas.secure_cookies``, i.e. production).
* HTML gets a strict ``Content-Security-Policy`` (no inline styles or
  scripts; the dashboard's one script, ``static/copy.js``, is a file of the
  service's own) and ``X-Frame-Options: DENY``. A view's own
  CSP is kept as is: the hosted login form's omits ``form-action`` because its
  303 to the client app must not be blocked.
* Dashboard pages show tenant data: ``Cache-Control: no-store``.
"""

from __future__ import annotations

import io

from saas.errors import ApiError, Reason, render_error
from saas.request_text import raw_path

MAX_BODY_BYTES = 64 * 1024
HSTS = "max-age=63072000; includeSubDomains"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _too_large() -> ApiError:
    return ApiError(413, "invalid_request", Reason.PAYLOAD_TOO_LARGE,
                    "the request body is larger than 64 KiB")


def _body_within_limit(request) -> bool:
    if request.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return (request.content_length or 0) <= MAX_BODY_BYTES
    # Chunked (no length announced): read at most one byte past the limit and
    # hand what was read to the view.
    body = request.environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return False
    request.body_file = io.BytesIO(body)
    request.content_length = len(body)
    return True


def _form_parses(request) -> bool:
    """Parse a multipart body once, here (WebOb caches it for the view): a
    malformed one (no boundary, say) is the client's 400, never a view's 500.
    A urlencoded body cannot be malformed (any bytes split into fields) and is
    parsed where it is read; a form in another charset than UTF-8 is not
    parsed at all (``saas.request_text`` refuses it)."""
    if request.content_type != "multipart/form-data" or request.charset != "UTF-8":
        return True
    try:
        request.POST  # noqa: B018 - parsed and cached by WebOb for the view
    except ValueError:
        return False
    return True


def _refuse(request, error: ApiError):
    # Outside pyramid_tm's transaction: the error page shows the signed-in
    # member, read through request.db, which needs one.
    with request.tm:
        return render_error(request, error)


def hardening_tween_factory(handler, registry):
    secure = registry.settings["saas.secure_cookies"]

    def hardening_tween(request):
        if request.method in ("POST", "PUT", "PATCH") and not _body_within_limit(request):
            response = _refuse(request, _too_large())
        elif not _form_parses(request):
            response = _refuse(request, ApiError(
                400, "invalid_request", Reason.CLAIMS_INVALID, "the form body is malformed"))
        else:
            response = handler(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if (response.content_type or "").lower() == "text/html":
            headers.setdefault("Content-Security-Policy", CSP)
            headers.setdefault("X-Frame-Options", "DENY")
        path = raw_path(request)
        if path == "/dashboard" or path.startswith("/dashboard/"):
            headers.setdefault("Cache-Control", "no-store")
        return response

    return hardening_tween


def includeme(config) -> None:
    config.add_tween("saas.hardening.hardening_tween_factory",
                     under="saas.logging.access_log_tween_factory",
                     over="pyramid_tm.tm_tween_factory")
