"""Authorization responses: how the login's outcome reaches the client.

``response_mode=query`` (the default) is a 302 with the parameters in the
redirect URI's query; ``form_post`` (OAuth 2.0 Form Post Response Mode) is
an HTML page whose form posts them to the redirect URI at once. Every
answer, success or error, carries ``iss`` (RFC 9207), so a client talking to
several providers can tell which one answered.
"""

from __future__ import annotations

import secrets

from pyramid.renderers import render_to_response
from pyramid.response import Response

from saas.flows.redirect_uris import with_query
from saas.tokens.access import issuer

QUERY = "query"
FORM_POST = "form_post"
RESPONSE_MODES = (QUERY, FORM_POST)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def found(location: str, status: int = 302) -> Response:
    """A redirect of the login path, built as a plain response: ``HTTPFound``
    renders an HTML body from a template for every answer, which no browser
    following the redirect ever shows."""
    return Response(status=status, headerlist=[
        ("Location", location), ("Cache-Control", "no-store"), ("Pragma", "no-cache"),
        ("Content-Length", "0"),
    ])


def authorization_response(request, app_id: str, redirect_uri: str, response_mode: str,
                           params: dict[str, str | None], status: int = 302) -> Response:
    """The answer carrying ``params`` (and ``iss``) to the client's redirect URI.

    ``status``: 302 after a GET, 303 after the hosted form's POST.
    """
    values = {**params, "iss": issuer(request.registry.settings["saas.public_base_url"],
                                      app_id)}
    if response_mode == FORM_POST:
        return _form_post(request, redirect_uri, values)
    return found(with_query(redirect_uri, values), status)


def _form_post(request, redirect_uri: str, values: dict[str, str | None]) -> Response:
    nonce = secrets.token_urlsafe(16)
    response = render_to_response("saas:templates/form_post.html", {
        "action": redirect_uri,
        "fields": [(k, v) for k, v in values.items() if v is not None],
        "nonce": nonce,
    }, request=request)
    # Only our one inline script runs; the form may post to the client's origin.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return _no_store(response)


def client_response(request, app_id: str, record: dict, status: int = 302,
                    **params: str | None) -> Response:
    """The answer to the client named in a login state's record, with its own state."""
    return authorization_response(
        request, app_id, record["redirect_uri"], record.get("response_mode") or QUERY,
        dict(params, state=record.get("client_state")), status)
