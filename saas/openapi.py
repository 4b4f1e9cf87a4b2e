"""The OpenAPI 3.1 description of the public surface, served at ``/v1/openapi.json``.

The document is ``saas/openapi.json`` (package data), kept true by
``tests/functional/test_manage_openapi.py``: every route served under
``/v1/`` and the probes is in it, and nothing else is.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from pyramid.response import Response
from pyramid.view import view_config

DOCUMENT = "openapi.json"


@functools.cache
def document() -> dict[str, Any]:
    """The document as shipped (``servers`` relative to where it is served)."""
    return json.loads(resources.files("saas").joinpath(DOCUMENT).read_text("utf-8"))


@functools.cache
def _served(base_url: str) -> bytes:
    served = dict(document(), servers=[{"url": base_url}])
    return json.dumps(served, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@view_config(route_name="openapi", request_method="GET")
def openapi(request) -> Response:
    body = _served(request.registry.settings["saas.public_base_url"])
    response = Response(body=body, content_type="application/json", charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, so API tools may load it
    return response
