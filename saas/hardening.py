"""Protections every response and request gets, whatever the view.

* Request bodies over 64 KiB are refused with 413 before anything parses them
  (DESIGN §7), chunked bodies included.
* Security headers: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer`` (URLs here carry states and codes), and HSTS when the service
  runs behind https (``saas.secure_cookies``, i.e. production).
"""

from __future__ import annotations

import io

from saas.errors import ApiError, Reason, render_error

MAX_BODY_BYTES = 64 * 1024
HSTS = "max-age=63072000; includeSubDomains"


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


def hardening_tween_factory(handler, registry):
    secure = registry.settings["saas.secure_cookies"]

    def hardening_tween(request):
        if request.method in ("POST", "PUT", "PATCH") and not _body_within_limit(request):
            response = render_error(request, _too_large())
        else:
            response = handler(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    return hardening_tween


def includeme(config) -> None:
    config.add_tween("saas.hardening.hardening_tween_factory",
                     under="saas.logging.access_log_tween_factory",
                     over="pyramid_tm.tm_tween_factory")
