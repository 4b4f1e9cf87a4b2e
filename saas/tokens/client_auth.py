"""Client authentication at the token, revocation and introspection endpoints
(RFC 6749 §2.3, docs/oidc.md).

A confidential app's client authenticates with its client secret, by HTTP
Basic (``client_secret_basic``: id and secret form-urlencoded, then base64)
or in the body (``client_secret_post``). A public app's client sends its
``client_id`` or nothing, and never a secret. Failures are 401
``invalid_client`` with ``WWW-Authenticate: Basic`` (RFC 6749 §5.2).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from saas.apps.cache import AppConfig
from saas.errors import ApiError, Reason
from saas.request_body import string_param

MAX_CREDENTIAL_CHARS = 512


def invalid_client(request, app: AppConfig, description: str) -> ApiError:
    realm = request.access_tokens.issuer(app.app_id)
    return ApiError(401, "invalid_client", Reason.INVALID_CLIENT, description, headers={
        "WWW-Authenticate": f'Basic realm="{realm}"', "Cache-Control": "no-store"})


def _basic_credentials(request, app: AppConfig) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client(request, app, "the Basic credentials are malformed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or len(decoded) > MAX_CREDENTIAL_CHARS:
        raise invalid_client(request, app, "the Basic credentials are malformed")
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(request, app: AppConfig, params: dict[str, Any],
                        *, confidential_only: bool = False) -> bool:
    """Check the client's credentials; True when it proved a client secret.

    ``confidential_only``: the endpoint serves confidential clients alone
    (introspection), so a public client is refused too.
    """
    basic = _basic_credentials(request, app)
    posted_id = string_param(params, "client_id")
    posted_secret = string_param(params, "client_secret")
    if basic is not None and posted_secret is not None:
        raise ApiError(400, "invalid_request", Reason.CLAIMS_INVALID,
                       "use one client authentication method, not two",
                       headers={"Cache-Control": "no-store"})
    client_id, secret = basic if basic is not None else (posted_id, posted_secret)
    if basic is not None and posted_id is not None and posted_id != client_id:
        raise invalid_client(request, app, "client_id differs from the Basic credentials")
    if client_id is not None and client_id != app.app_id:
        raise invalid_client(request, app, "client_id is not this app's id")
    if not app.confidential:
        if secret or confidential_only:
            raise invalid_client(request, app, "this app's client is public: it has no "
                                 "client secret" if secret else "only confidential clients "
                                 "may use this endpoint")
        return False
    if not secret:
        raise invalid_client(request, app, "client authentication is required")
    if not app.client_secret_matches(secret, request.now):
        raise invalid_client(request, app, "the client secret is wrong")
    return True
