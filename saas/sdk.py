"""The JavaScript SDK at ``GET /v1/sdk.js`` (its cross-origin calls: ``saas.cors``).

The script
    One ES module, ``sdk/js/src/bridgekeeper.js`` (the npm package
    ``@bridgekeeper/js``). The package ``saas`` reaches it through the symlink
    ``saas/static/sdk/bridgekeeper.js``, so an editable install reads the
    source itself and a built wheel carries a copy (``saas/static`` is package
    data). It is read once at startup — a deployment without it refuses to
    start — and served with ``Content-Type: text/javascript``, ``Cache-Control:
    public, max-age=300`` and a strong ETag (``If-None-Match`` → 304), to any
    origin (``Access-Control-Allow-Origin: *``: module scripts are fetched
    with CORS).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

from pyramid.response import Response

from saas.config import ConfigurationError
from saas.jwt.codec import b64url_encode

log = logging.getLogger(__name__)

SCRIPT_RESOURCE = ("static", "sdk", "bridgekeeper.js")
CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class Script:
    body: bytes
    etag: str


def load_script() -> Script:
    """The SDK's source, read from the package; a missing file stops the start."""
    resource = resources.files("saas").joinpath(*SCRIPT_RESOURCE)
    try:
        body = resource.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            "bridgekeeper: the JavaScript SDK saas/static/sdk/bridgekeeper.js (a link to "
            f"sdk/js/src/bridgekeeper.js) cannot be read: {exc}"
        ) from exc
    digest = b64url_encode(hashlib.sha256(body).digest()[:18])
    return Script(body=body, etag=f"sha256-{digest}")


def sdk_script(request) -> Response:
    script: Script = request.registry["saas.sdk_script"]
    response = Response(body=script.body, content_type="text/javascript", charset="utf-8")
    response.etag = script.etag  # strong: the bytes are fixed for the process
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.conditional_response = True  # If-None-Match → 304
    return response


def includeme(config) -> None:
    # Imperative on purpose: config.scan() sees this module in every configuration.
    config.registry["saas.sdk_script"] = load_script()
    config.add_view(sdk_script, route_name="sdk.script", request_method="GET")
