"""A request's text is UTF-8, or the request is refused with a 400.

WebOb decodes the path and the query string lazily and strictly (a
``UnicodeDecodeError``, hence a 500, wherever a view first reads them), its
form parser silently replaces bytes that are not UTF-8, and header values
reach us as latin-1 strings nobody decodes. So a tween checks, before routing
and before any view reads anything, that the path, the query string, the form
body (and the charset its type names: WebOb raises on any but UTF-8) and the
headers the service reads as text are UTF-8. A request that is
not gets 400 ``invalid_request`` in the shape of the endpoint its path names
(docs/protocol.md §7): JSON for the APIs, a page for browsers, and the management API's
own reasons (``invalid_parameter``, ``invalid_body``); nothing is written.

The browser login pages read their query string themselves, through
:func:`query_params`: once authorize's ``redirect_uri`` is valid a malformed
request is answered by redirecting to the client (docs/protocol.md §4.1), and every
callback outcome is an audit event (§4.2).

JSON is UTF-8 by definition (``json.loads`` refuses other bytes), but a
``\\ud800`` escape parses to a lone surrogate, a string no UTF-8 can hold:
:func:`is_text` finds those for the body parsers and authorize's ``data``
(tenant tokens refuse them with their own reasons: ``saas.flows.jwt_strict``).
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from pyramid.interfaces import IRoutesMapper
from pyramid.tweens import EXCVIEW
from webob.compat import cgi_FieldStorage
from webob.multidict import MultiDict
from webob.request import PATH_SAFE

from saas.errors import BROWSER_ROUTES, ApiError, ManageReason, Reason, render_error
from saas.security import MANAGE_PATH

# The headers whose values the service reads as text; the others (User-Agent,
# Referer, …) are only recorded or ignored, and a proxy's own headers may
# carry latin-1 text that must not lock users out.
TEXT_HEADERS = ("Authorization", "Cookie", "Content-Type", "Origin", "X-CSRF-Token",
                "X-Requested-With", "X-Forwarded-For")
_HEADER_KEYS = tuple((name, "CONTENT_TYPE" if name == "Content-Type"
                      else "HTTP_" + name.upper().replace("-", "_")) for name in TEXT_HEADERS)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_QUERY_SEPARATORS = re.compile(rb"[&;]")


def _is_utf8(raw: str | bytes, *, percent_encoded: bool = False) -> bool:
    """Bytes, or a WSGI string (a byte per latin-1 character), hold UTF-8."""
    percent = b"%" if isinstance(raw, bytes) else "%"
    if raw.isascii() and not (percent_encoded and percent in raw):
        return True  # the common case, at the cost of a scan or two
    try:
        data = raw if isinstance(raw, bytes) else raw.encode("latin-1")
        (unquote_to_bytes(data) if percent_encoded else data).decode("utf-8")
    except UnicodeError:
        return False
    return True


def raw_path(request) -> str:
    """The path as it came, percent-encoded, never decoded: what
    ``request.path`` gives for a UTF-8 path, without its exception otherwise."""
    environ = request.environ
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return quote(raw.encode("latin-1", "replace"), safe=PATH_SAFE)


def query_params(request) -> tuple[MultiDict, bool]:
    """The query's parameters and whether all of it is UTF-8 text; when it is
    not, the parameters are those whose name and value both are."""
    raw = request.environ.get("QUERY_STRING", "")
    if _is_utf8(raw, percent_encoded=True):
        return request.GET, True
    params = MultiDict()
    # Split as WebOb does (webob.compat.parse_qsl_text), decoding pair by pair.
    for pair in _QUERY_SEPARATORS.split(raw.encode("latin-1", "replace").replace(b"+", b" ")):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        try:
            params.add(unquote_to_bytes(name).decode("utf-8"),
                       unquote_to_bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return params, False


def is_text(value: Any) -> bool:
    """Every string in a parsed JSON value (keys included) can be UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _form_is_utf8(request) -> bool:
    if request.content_type == "multipart/form-data":
        # Parsed again, strictly: WebOb's own parse replaces what is not UTF-8.
        environ = {**request.environ, "QUERY_STRING": "",
                   "CONTENT_LENGTH": str(len(request.body))}
        try:
            cgi_FieldStorage(fp=io.BytesIO(request.body), environ=environ,
                             keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return False
        except ValueError:
            return True  # malformed otherwise: saas.hardening has answered it
        return True
    return _is_utf8(request.body, percent_encoded=True)


def _is_form(request) -> bool:
    """The body is one request.POST reads (as WebOb decides: a POST without a
    content type is a form; the body of a GET or HEAD is never read)."""
    if request.method in ("GET", "HEAD"):
        return False
    content_type = request.content_type
    return content_type in FORM_TYPES or (request.method == "POST" and not content_type)


def _route_named_by_path(request):
    """The route the path names, matched on the raw path, so that even a
    segment that is not UTF-8 tells which kind of endpoint was meant."""
    path = request.environ.get("PATH_INFO", "")
    for route in request.registry.getUtility(IRoutesMapper).get_routes():
        if route.match(path) is not None:
            return route
    return None


def _reads_own_query(request, route) -> bool:
    return request.method == "GET" and getattr(route, "name", None) in BROWSER_ROUTES


def _not_text_part(request) -> str | None:
    """Which part of the request is not UTF-8, if any."""
    environ = request.environ
    if not _is_utf8(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")):
        return "path"
    if not _is_utf8(environ.get("QUERY_STRING", ""), percent_encoded=True) \
            and not _reads_own_query(request, _route_named_by_path(request)):
        return "query string"
    for name, key in _HEADER_KEYS:
        value = environ.get(key)
        if value is not None and not _is_utf8(value):
            return f"{name} header"
    if _is_form(request):
        if request.charset != "UTF-8":  # WebOb's spelling of every alias of UTF-8
            return "form charset"  # WebOb raises on any other wherever a view reads it
        if not _form_is_utf8(request):
            return "form body"
    return None


def not_text_refusal(request) -> ApiError | None:
    """400 for a request whose text is not all UTF-8, None for one that is.

    It is answered before routing, so ``request.matched_route`` is set to the
    route the path names: the answer takes the shape of that endpoint.
    """
    part = _not_text_part(request)
    if part is None:
        return None
    request.matched_route = _route_named_by_path(request)
    path = request.environ.get("PATH_INFO", "")
    if path == MANAGE_PATH or path.startswith(MANAGE_PATH + "/"):
        reason = ManageReason.INVALID_BODY if part in ("form body", "form charset") \
            else ManageReason.INVALID_PARAMETER
    else:
        reason = Reason.CLAIMS_INVALID
    description = ("a form body must be UTF-8 (charset=utf-8)" if part == "form charset"
                   else f"the {part} is not UTF-8 text")
    return ApiError(400, "invalid_request", reason, description)


def request_text_tween_factory(handler, registry):
    def request_text_tween(request):
        refusal = not_text_refusal(request)
        return handler(request) if refusal is None else render_error(request, refusal)

    return request_text_tween


def includeme(config) -> None:
    # Inside the transaction (an error page may show the signed-in member)
    # and the hardening tween (the refusal gets its security headers too).
    config.add_tween("saas.request_text.request_text_tween_factory",
                     under="pyramid_tm.tm_tween_factory", over=EXCVIEW)
