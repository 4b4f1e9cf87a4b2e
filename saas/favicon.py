"""The service's icon. Pages link ``static/favicon.svg``; ``/favicon.ico``
answers the request browsers make on their own (``saas/static/favicon.ico``,
the same design at 16, 32 and 48 px), so no page leaves a 404 behind."""

from __future__ import annotations

from importlib import resources

from pyramid.response import Response
from pyramid.view import view_config

ICON = (resources.files("saas") / "static" / "favicon.ico").read_bytes()
MAX_AGE = 86400


@view_config(route_name="favicon", request_method=("GET", "HEAD"))
def favicon(request) -> Response:
    response = Response(body=ICON, content_type="image/x-icon")
    response.cache_expires(MAX_AGE)
    return response
